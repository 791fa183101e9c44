from enum import StrEnum


class OrdersErrorCode(StrEnum):
    INVALID_LINES = "invalid_lines"
    INVALID_CURRENCY = "invalid_currency"
    UNKNOWN_PRODUCT = "unknown_product"
    CURRENCY_MISMATCH = "currency_mismatch"
    TOTAL_TOO_LARGE = "total_too_large"
    ORDER_NOT_FOUND = "order_not_found"
    INVALID_TRANSITION = "invalid_transition"

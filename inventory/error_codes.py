from enum import StrEnum


class InventoryErrorCode(StrEnum):
    SKU_TAKEN = "sku_taken"
    INVALID_PRICE = "invalid_price"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_SKU = "invalid_sku"
    INVALID_CURRENCY = "invalid_currency"
    PRODUCT_NOT_FOUND = "product_not_found"
    STOCK_LIMIT = "stock_limit"


class ReservationFailure(StrEnum):
    """``reason`` values of event-err-reserving-product."""

    INVALID_LINES = "invalid_lines"
    UNKNOWN_PRODUCT = "unknown_product"
    CURRENCY_MISMATCH = "currency_mismatch"
    INSUFFICIENT_STOCK = "insufficient_stock"
    AMOUNT_TOO_LARGE = "amount_too_large"

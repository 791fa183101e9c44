from enum import StrEnum


class PaymentsErrorCode(StrEnum):
    INVALID_AMOUNT = "invalid_amount"
    INVALID_CURRENCY = "invalid_currency"
    WALLET_EXISTS = "wallet_exists"
    WALLET_NOT_FOUND = "wallet_not_found"
    BALANCE_LIMIT = "balance_limit"
    REASON_REQUIRED = "reason_required"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


class PaymentFailure(StrEnum):
    """``reason`` values of a failed event-payment."""

    NO_WALLET = "no_wallet"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INVALID_AMOUNT = "invalid_amount"


class SuspiciousKind(StrEnum):
    REPEATED_INSUFFICIENT_FUNDS = "repeated_insufficient_funds"
    PAYMENT_FAILURES_IN_WINDOW = "payment_failures_in_window"
    ORDER_TOTAL_ABOVE_MEDIAN = "order_total_above_median"  # sent by orders

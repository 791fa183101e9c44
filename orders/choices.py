from django.db import models


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    CANCELED = "canceled", "Canceled"


class OrderEventKind(models.TextChoices):
    PLACED = "placed", "Placed"
    APPROVED = "approved", "Approved"
    CANCELED = "canceled", "Canceled"
    ATTENTION = "attention", "Flagged for attention"
    RESUMED = "resumed", "Resumed by an operator"


class CancelReason(models.TextChoices):
    CUSTOMER = "customer_request", "Canceled by the customer"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    RESERVATION_FAILED = "reservation_failed", "Products could not be reserved"
    DEADLINE = "deadline", "Still pending at the deadline"
    STEP_FAILED = "step_failed", "A saga step was dead-lettered"
    OPERATOR = "operator", "Canceled by an operator"


class DeadLetterAction(models.TextChoices):
    """What the saga sweep did about a dead-lettered delivery of an order event."""

    CANCELED = "canceled", "Order canceled (step_failed)"
    FLAGGED = "flagged", "Order flagged needs_attention (a compensation failed)"
    IGNORED = "ignored", "Nothing to do (order gone or already over)"

from django.db import models


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    CANCELED = "canceled", "Canceled"


class OrderEventKind(models.TextChoices):
    PLACED = "placed", "Placed"
    APPROVED = "approved", "Approved"
    CANCELED = "canceled", "Canceled"


class CancelReason(models.TextChoices):
    CUSTOMER = "customer_request", "Canceled by the customer"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    RESERVATION_FAILED = "reservation_failed", "Products could not be reserved"

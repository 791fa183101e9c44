from django.db import models


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    # The order was canceled before any charge was attempted: nothing will be charged for it.
    VOIDED = "voided", "Voided"

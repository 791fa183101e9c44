from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending (queued)"
    RETRYING = "retrying", "retrying (backing off)"
    PARKED = "parked", "parked (not ready)"
    DONE = "done", "done"
    DEAD = "dead", "dead letter"

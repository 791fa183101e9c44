from django.db import models


class EventsErrorCode(models.TextChoices):
    DELIVERY_NOT_FOUND = "delivery_not_found"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_CONSUMER = "unknown_consumer"

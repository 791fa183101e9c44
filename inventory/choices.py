from django.db import models


class ReservationStatus(models.TextChoices):
    RESERVED = "reserved", "Reserved"
    RELEASED = "released", "Released"
    COMMITTED = "committed", "Committed"
    # The order's lines could not be reserved; nothing was held. Kept so a redelivered order changes nothing.
    REJECTED = "rejected", "Rejected"

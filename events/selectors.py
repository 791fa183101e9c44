"""Reads of the bus: the dead-letter queue, parked deliveries, counts per status."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from events.choices import DeliveryStatus
from events.models import Delivery


def deliveries_dead() -> QuerySet[Delivery]:
    return Delivery.objects.filter(status=DeliveryStatus.DEAD).select_related("event").order_by("id")


def deliveries_parked() -> QuerySet[Delivery]:
    return Delivery.objects.filter(status=DeliveryStatus.PARKED).select_related("event").order_by("id")


def delivery_counts() -> dict[str, int]:
    """Deliveries per status (every status present, zero when none)."""
    counts = {status: 0 for status in DeliveryStatus.values}
    for row in Delivery.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts

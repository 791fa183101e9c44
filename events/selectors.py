"""Reads of the bus: the dead-letter queue, parked deliveries, counts per status."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
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


def bus_health() -> dict[str, Any]:
    """The bus's verdict for a probe or cron (``manage.py events health``): unhealthy when a delivery is dead-lettered
    or one has been pending (since its last send, by the database's clock) longer than
    EVENTS_HEALTH_MAX_PENDING_SECONDS."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'dead'), count(*) FILTER (WHERE status = 'parked'), "
            "count(*) FILTER (WHERE status IN ('pending', 'retrying')), "
            "coalesce(extract(epoch FROM clock_timestamp() - min(sent_at) FILTER (WHERE status = 'pending')), 0) "
            "FROM events_delivery WHERE status <> 'done'")
        dead, parked, open_, oldest = cursor.fetchone()
    limit = float(settings.EVENTS_HEALTH_MAX_PENDING_SECONDS)
    problems = []
    if dead:
        problems.append(f"{dead} dead-lettered deliveries (manage.py events dlq)")
    if float(oldest) > limit:
        problems.append(f"a delivery has been pending for {float(oldest):.0f} s (more than {limit:.0f} s)")
    return {"healthy": not problems, "problems": problems, "dead": dead, "parked": parked, "open": open_,
            "oldest_pending_seconds": round(float(oldest), 3), "max_pending_seconds": limit}

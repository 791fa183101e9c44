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


UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.PARKED, DeliveryStatus.DEAD)
REASON_SAMPLE = 1000


def delivery_unfinished_counts() -> dict[str, int]:
    """Deliveries not done, per status (pending, retrying, parked, dead; zero when none). Counts only rows the
    partial index on unfinished deliveries holds: never a COUNT over the whole (mostly done) table."""
    counts = {status: 0 for status in UNFINISHED}
    for row in Delivery.objects.filter(status__in=UNFINISHED).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def delivery_reasons(*, status: str, sample: int = REASON_SAMPLE) -> list[tuple[str, str, int]]:
    """Why deliveries are in ``status``: (consumer, first line of the last error, how many), most frequent first,
    among the newest ``sample`` of them."""
    ids = (Delivery.objects.filter(status=status).order_by("-updated_at").values_list("id", flat=True)[:sample])
    tally: dict[tuple[str, str], int] = {}
    for consumer, error in Delivery.objects.filter(id__in=list(ids)).values_list("consumer", "last_error"):
        reason = (error.strip().splitlines() or ["(no error recorded)"])[0][:200]
        tally[(consumer, reason)] = tally.get((consumer, reason), 0) + 1
    return sorted(((c, r, n) for (c, r), n in tally.items()), key=lambda row: (-row[2], row[0], row[1]))

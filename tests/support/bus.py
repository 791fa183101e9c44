"""Run the bus in the test process, without a broker: every delivery the outbox holds open is run through
``events.services.delivery_run`` (the same code a worker runs), round after round, until none is left open.
Set ``settings.EVENTS_RELAY_ON_COMMIT = False`` first, so nothing is sent to Celery."""

from __future__ import annotations

from events.choices import DeliveryStatus
from events.models import Delivery
from events.services import delivery_run


def drain_bus(*, rounds: int = 50) -> int:
    """Run open deliveries until none is left (or nothing moves any more); returns how many runs it made."""
    runs = 0
    for _ in range(rounds):
        open_ids = list(Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.PARKED],
        ).order_by("id").values_list("id", flat=True))
        if not open_ids:
            return runs
        before = dict(Delivery.objects.filter(id__in=open_ids).values_list("id", "status"))
        for delivery_id in open_ids:
            delivery_run(delivery_id=delivery_id)
            runs += 1
        after = dict(Delivery.objects.filter(id__in=open_ids).values_list("id", "status"))
        if after == before and not Delivery.objects.exclude(id__in=open_ids).filter(
                status=DeliveryStatus.PENDING).exists():
            return runs
    return runs

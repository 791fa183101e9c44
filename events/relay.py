"""The relay: hands deliveries to the broker, one Celery message each on the consumer's queue.

Kicked right after commit by ``publish()`` (and by completions that wake parked deliveries, the sweep, retries and
replays). A message that is never sent, or lost by the broker, is not lost: the delivery row says what is owed and
the sweep sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


def send(deliveries: Iterable[tuple[Any, ...]]) -> int:
    """Hand messages to the broker; a failure is logged and left to the sweep (the rows say what is owed).

    Each item is ``(delivery id, queue)`` (the message names the delivery) or ``(delivery id, queue, consumer,
    event envelope)`` (the message also carries the event, so the worker can run it in one round trip)."""
    from events.tasks import deliver

    sent = 0
    for delivery_id, queue, *carried in deliveries:
        try:
            deliver.apply_async(args=[delivery_id, *carried], queue=queue)
            sent += 1
        except Exception:
            logger.exception("could not send delivery %s to queue %s; the sweep will resend it", delivery_id, queue)
    return sent

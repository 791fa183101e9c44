"""The relay: hands deliveries to the broker, one Celery message each on the consumer's queue.

Kicked right after commit by ``publish()`` (and by completions that wake parked deliveries, the sweep, retries and
replays). A message that is never sent, or lost by the broker, is not lost: the delivery row says what is owed and
the sweep sends it again. So the relay never makes its caller (often a web request) wait on a broker that is down
or unresponsive: each message is tried once, with the broker's short socket timeouts
(``CELERY_BROKER_TRANSPORT_OPTIONS``), and after a failure this process stops trying for
``EVENTS_RELAY_PAUSE_SECONDS`` (the rows wait for the sweep).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_paused_until = 0.0  # monotonic; the broker failed in this process: leave sends to the sweep until then


def send(deliveries: Iterable[tuple[Any, ...]]) -> int:
    """Hand messages to the broker; a failure is logged and left to the sweep (the rows say what is owed).

    Each item is ``(delivery id, queue)`` (the message names the delivery) or ``(delivery id, queue, consumer,
    event envelope)`` (the message also carries the event, so the worker can run it in one round trip)."""
    global _paused_until
    from saaskit.celery import app

    deliver = app.tasks["events.deliver"]  # by name: the relay does not import the tasks (no import circle)
    items = list(deliveries)
    if not items:
        return 0
    if time.monotonic() < _paused_until:
        logger.warning("broker unavailable: %s deliveries left to the sweep", len(items))
        return 0
    sent = 0
    for delivery_id, queue, *carried in items:
        try:
            deliver.apply_async(args=[delivery_id, *carried], queue=queue, retry=False,
                                argsrepr=_args_repr(delivery_id, carried), kwargsrepr="{}")
            sent += 1
        except Exception:
            _paused_until = time.monotonic() + float(settings.EVENTS_RELAY_PAUSE_SECONDS)
            logger.exception("could not send delivery %s to queue %s; it and %s more are left to the sweep",
                             delivery_id, queue, len(items) - sent - 1)
            break
    return sent


def _args_repr(delivery_id: Any, carried: list[Any]) -> str:
    """The message's ``argsrepr`` header (what logs and monitors show, and where the sweep reads the delivery id
    of a waiting message: ``events.services._message_delivery_id``), built here: Celery's own ``saferepr`` of the
    carried envelope cost about a quarter of ``publish()``'s CPU time (cProfile, bench/events.py)."""
    if not carried:
        return f"[{delivery_id}]"
    consumer, envelope = carried
    event = envelope.get("name"), envelope.get("id")
    return f"[{delivery_id}, {consumer!r}, {{event {event[0]} {event[1]}}}]"

"""The relay: hands deliveries to the broker, one Celery message each on the consumer's queue.

Kicked right after commit by ``publish()`` (and by completions that wake parked deliveries, the sweep, retries and
replays). A message that is never sent, or lost by the broker, is not lost: the delivery row says what is owed and
the sweep sends it again. So the relay never makes its caller (often a web request) wait on a broker that is down
or unresponsive: each message is tried once, with the broker's short socket timeouts
(``CELERY_BROKER_TRANSPORT_OPTIONS``), and after a failure this process stops trying for
``EVENTS_RELAY_PAUSE_SECONDS`` (the rows wait for the sweep).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

TASK = "events.deliver"  # the task the messages call (events.tasks.deliver)
_paused_until = 0.0  # monotonic; the broker failed in this process: leave sends to the sweep until then


def send(deliveries: Iterable[tuple[Any, ...]]) -> int:
    """Hand messages to the broker; a failure is logged and left to the sweep (the rows say what is owed).

    Each item is ``(delivery id, queue)`` (the message names the delivery) or ``(delivery id, queue, consumer,
    event envelope)`` (the message also carries the event, so the worker can run it in one round trip)."""
    global _paused_until
    items = list(deliveries)
    if not items:
        return 0
    if time.monotonic() < _paused_until:
        logger.warning("broker unavailable: %s deliveries left to the sweep", len(items))
        return 0
    sent = 0
    for delivery_id, queue, *carried in items:
        try:
            _put([delivery_id, *carried], queue, _args_repr(delivery_id, carried))
            sent += 1
        except Exception:
            _paused_until = time.monotonic() + float(settings.EVENTS_RELAY_PAUSE_SECONDS)
            _drop_sender()  # its connection may be broken: the next send after the pause opens a new one
            logger.exception("could not send delivery %s to queue %s; it and %s more are left to the sweep",
                             delivery_id, queue, len(items) - sent - 1)
            break
    return sent


def _put(args: list[Any], queue: str, argsrepr: str) -> None:
    """One ``events.deliver`` message on ``queue``: Celery's task message (protocol 2, built by Celery's
    ``app.amqp.as_task_v2``) published by kombu on this thread's long-lived producer, once, with the broker's short
    socket timeouts and no retry."""
    sender = _sender()
    task_id = str(uuid.uuid4())
    message = sender.app.amqp.as_task_v2(task_id, TASK, args=args, kwargs={}, argsrepr=argsrepr, kwargsrepr="{}",
                                         origin=sender.origin, ignore_result=True, time_limit=sender.time_limit,
                                         soft_time_limit=sender.soft_time_limit)
    sender.producer.publish(message.body, exchange="", routing_key=queue, headers=message.headers,
                            serializer="json", retry=False, declare=None, **message.properties)


# --- the relay's own connection ---------------------------------------------------------------------------------
# ``apply_async`` costs about 400 us of CPU per message here (bench/events.py, cProfile): Celery's send path (exec
# options, router, signals, a producer from its pool per call) and, in kombu's Redis channel, a new redis-py client
# for every message put (redis-py fills a dict of some 170 response callbacks per client, ~110 us). The relay's
# messages need none of that: the queue is known, the message takes Celery's defaults. So each thread keeps one
# connection, channel and producer (kombu's), and the channel one redis-py client (thread-safe over its pool) for
# its puts: about 85 us per message. The message is the one ``apply_async`` would send (same headers, body and
# properties; the default exchange routes by queue name, as Redis queues are lists of that name).

class _Sender:
    def __init__(self, app: Any) -> None:
        from celery.utils.nodenames import anon_nodename
        from kombu import Producer

        self.app = app
        self.pid = os.getpid()
        self.generation = _generation
        self.origin = anon_nodename()
        task = app.tasks[TASK]
        self.time_limit, self.soft_time_limit = task.time_limit, task.soft_time_limit  # in the headers, as Celery
        self.connection = app.connection_for_write()  # a Connection of its own (not from Celery's pool)
        transport = self.connection.transport  # this connection's own transport object
        transport.Channel = _channel_keeping_its_client(type(transport).Channel)
        self.producer = Producer(self.connection.channel(), serializer="json", auto_declare=False)

    def close(self) -> None:
        try:
            self.producer.channel.close()
            self.connection.release()
        except Exception:  # a broken connection: nothing more to release
            logger.debug("closing the relay's broker connection failed", exc_info=True)


@functools.cache
def _channel_keeping_its_client(base: type) -> type:
    """``base`` (kombu's Redis channel class, or its Sentinel one) keeping one redis-py client for its puts instead
    of building one per message (see above). Subclassing kombu's channel is the transport's extension point; its
    ``conn_or_acquire`` is where every put gets its client."""

    class RelayChannel(base):  # type: ignore[misc, valid-type]
        _relay_client = None

        @contextmanager
        def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
            if client is not None:
                yield client
                return
            if self._relay_client is None:
                self._relay_client = self._create_client()
            yield self._relay_client

    return RelayChannel


_local = threading.local()
_generation = 0  # reset() makes every thread's sender stale


def reset() -> None:
    """Make every thread open a new connection for its next send (after the broker's settings changed)."""
    global _generation
    _generation += 1


def _sender() -> _Sender:
    """This thread's sender, made anew in a forked child and after ``reset()``."""
    sender = getattr(_local, "sender", None)
    if sender is not None and (sender.pid != os.getpid() or sender.generation != _generation):
        if sender.pid == os.getpid():
            sender.close()
        sender = None
    if sender is None:
        from saaskit.celery import app

        sender = _local.sender = _Sender(app)
    return sender


def _drop_sender() -> None:
    sender = getattr(_local, "sender", None)
    _local.sender = None
    if sender is not None and sender.pid == os.getpid():
        sender.close()


def _args_repr(delivery_id: Any, carried: list[Any]) -> str:
    """The message's ``argsrepr`` header (what logs and monitors show, and where the sweep reads the delivery id
    of a waiting message: ``events.services._message_delivery_id``), built here: Celery's own ``saferepr`` of the
    carried envelope cost about a quarter of ``publish()``'s CPU time (cProfile, bench/events.py)."""
    if not carried:
        return f"[{delivery_id}]"
    consumer, envelope = carried
    event = envelope.get("name"), envelope.get("id")
    return f"[{delivery_id}, {consumer!r}, {{event {event[0]} {event[1]}}}]"

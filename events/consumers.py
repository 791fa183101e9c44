"""Subscribing to events: ``@consumer(event_name, name="app.function")`` and ``NotReady``.

The decorated function is returned unchanged (call it directly in tests); the bus delivers each event to it as
a Celery task on its queue (the app label of its module unless ``queue=`` says otherwise), inside one
transaction with its idempotency record.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from events.catalogue import BY_NAME
from events.errors import ConsumerRegistrationError

if TYPE_CHECKING:
    from events.envelope import Event

logger = logging.getLogger(__name__)

Handler = Callable[[Any], None]

# The event whose consumer is running: events published meanwhile default to it as cause and share its
# correlation id.
current_event: contextvars.ContextVar[Event | None] = contextvars.ContextVar("events_current_event", default=None)


class NotReady(Exception):
    """Raised by a consumer that needs an event that has not arrived yet: its writes are rolled back and the
    delivery is parked until a delivery of ``waits_for`` (an event name; by default any event) in the same
    correlation completes. A delivery parked longer than EVENTS_PARK_MAX_SECONDS is dead-lettered ("prerequisite
    never arrived")."""

    def __init__(self, message: str = "", *, waits_for: str | None = None) -> None:
        super().__init__(message)
        if waits_for is not None and waits_for not in BY_NAME:
            raise ConsumerRegistrationError(f"NotReady(waits_for={waits_for!r}): unknown event")
        self.waits_for = waits_for or "*"


@dataclass(frozen=True)
class Subscription:
    event_name: str
    name: str
    queue: str
    handler: Handler


_REGISTRY: dict[str, Subscription] = {}


def consumer(event_name: str, *, name: str, queue: str | None = None) -> Callable[[Handler], Handler]:
    if event_name not in BY_NAME:
        raise ConsumerRegistrationError(f"@consumer({event_name!r}): unknown event, see events.catalogue")

    def register(handler: Handler) -> Handler:
        sub = Subscription(event_name=event_name, name=name, queue=queue or handler.__module__.split(".")[0],
                           handler=handler)
        existing = _REGISTRY.get(name)
        if existing is not None and (existing.event_name, existing.queue) != (sub.event_name, sub.queue):
            raise ConsumerRegistrationError(f"consumer name {name!r} is already registered for "
                                            f"{existing.event_name}")
        _REGISTRY[name] = sub
        return handler

    return register


def subscriptions_for(event_name: str) -> list[Subscription]:
    return [sub for sub in _REGISTRY.values() if sub.event_name == event_name]


def get_subscription(name: str) -> Subscription | None:
    return _REGISTRY.get(name)


def all_subscriptions() -> list[Subscription]:
    return sorted(_REGISTRY.values(), key=lambda s: (s.event_name, s.name))


def unregister(name: str) -> None:
    """For tests that register throwaway consumers."""
    _REGISTRY.pop(name, None)


# Per-process cache of the instances events name (id -> (expires at, Instance)): every saga delivery needs its
# event's Instance, and loading it was one statement of each. Instances are rarely deleted: a deletion in this
# process drops the entry at once (post_delete); in another process the entry lives on for at most
# EVENTS_INSTANCE_CACHE_SECONDS, during which a consumer's writes for the gone instance fail loudly on its foreign
# keys at COMMIT (the delivery is retried, by then the lookup says "gone") and conditional updates match nothing.
# Only instances found are cached; ``is_active`` is not part of the check (consumers finish what a deactivated
# instance started: its orders still end, its compensations still run).
_instance_cache: dict[int, tuple[float, Any]] = {}


def instance_cache_clear(pk: int | None = None) -> None:
    """Forget one cached instance (``pk``) or all of them."""
    if pk is None:
        _instance_cache.clear()
    else:
        _instance_cache.pop(pk, None)


def _forget_instance(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance_cache_clear(instance.pk)


def event_instance(event: Any) -> Any:
    """The Instance the event belongs to, or None (logged) when it is gone: a consumer has nothing to do then.
    Cached per process (see ``_instance_cache``); an entry whose slug differs from the event's is looked up again."""
    from accounts.models import Instance

    pk = event.instance_id
    if pk is None:
        logger.warning("%s %s: instance %s does not exist, skipped", event.name, event.id, pk)
        return None
    now = time.monotonic()
    cached = _instance_cache.get(pk)
    if cached is not None and cached[0] > now and (event.instance_slug is None
                                                  or cached[1].slug == event.instance_slug):
        return cached[1]
    instance = Instance.objects.filter(pk=pk).first()
    if instance is None:
        _instance_cache.pop(pk, None)
        logger.warning("%s %s: instance %s does not exist, skipped", event.name, event.id, pk)
        return None
    ttl = float(getattr(settings, "EVENTS_INSTANCE_CACHE_SECONDS", 5))
    if ttl > 0:
        _instance_cache[pk] = (now + ttl, instance)
    return instance


def payload_int(event: Any, key: str) -> int:
    """``event.payload[key]`` as an int, or ValueError (the bus retries, then dead-letters it with the reason)."""
    value = event.payload.get(key) if isinstance(event.payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{event.name} {event.id}: payload.{key} must be an integer, got {value!r}")  # noqa: TRY004
    return value


# A save may change the slug (the envelope's other half); a delete makes the instance gone.
post_save.connect(_forget_instance, sender="accounts.Instance", weak=False, dispatch_uid="events.instance_cache.save")
post_delete.connect(_forget_instance, sender="accounts.Instance", weak=False,
                    dispatch_uid="events.instance_cache.delete")

"""Subscribing to events: ``@consumer(event_name, name="app.function")`` and ``NotReady``.

The decorated function is returned unchanged (call it directly in tests); the bus delivers each event to it as
a Celery task on its queue (the app label of its module unless ``queue=`` says otherwise), inside one
transaction with its idempotency record.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def event_instance(event: Any) -> Any:
    """The Instance the event belongs to, or None (logged) when it is gone: a consumer has nothing to do then."""
    from accounts.models import Instance

    instance = Instance.objects.filter(pk=event.instance_id).first() if event.instance_id is not None else None
    if instance is None:
        logger.warning("%s %s: instance %s does not exist, skipped", event.name, event.id, event.instance_id)
    return instance


def payload_int(event: Any, key: str) -> int:
    """``event.payload[key]`` as an int, or ValueError (the bus retries, then dead-letters it with the reason)."""
    value = event.payload.get(key) if isinstance(event.payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{event.name} {event.id}: payload.{key} must be an integer, got {value!r}")  # noqa: TRY004
    return value

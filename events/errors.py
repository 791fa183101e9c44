"""Programming errors raised at the ``publish()`` call site (not client input: they are bugs, not 4xx)."""

from __future__ import annotations


class EventError(ValueError):
    pass


class UnknownEventError(EventError):
    """The event name is not in ``events.catalogue``."""


class PayloadSchemaError(EventError):
    """The payload breaks the event's JSON Schema."""

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class ConsumerRegistrationError(EventError):
    """A ``@consumer`` names an unknown event or reuses a consumer name."""

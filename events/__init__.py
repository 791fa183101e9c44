"""The event bus. ``events.publish(name, payload, *, instance, causation_id=None, correlation_id=None)``."""

from __future__ import annotations

from typing import Any


def publish(name: str, payload: dict[str, Any], *, instance: Any, causation_id: str | None = None,
            correlation_id: str | None = None) -> Any:
    """Validate and write an outbox row in the caller's transaction (see ``events.services.event_publish``)."""
    from events.services import event_publish

    return event_publish(name=name, payload=payload, instance=instance, causation_id=causation_id,
                         correlation_id=correlation_id)


__all__ = ["publish"]

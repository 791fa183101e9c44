"""Small helpers the bus's tests share: a suspicious-activity payload for the test consumers, and its delivery."""

from __future__ import annotations

from events import publish
from events.models import Delivery
from tests.events.consumers_for_tests import ACTIVITY

__all__ = ["ACTIVITY", "activity", "publish_and_relay"]


def activity(kind: str, detail: str = "x", user_id: int | None = None) -> dict:
    """A payload the ``tests.activity`` consumer acts on by ``kind`` (record, boom, step, chain, chain-boom)."""
    return {"kind": kind, "detail": detail, "user_id": user_id}


def publish_and_relay(payload: dict, instance=None, correlation_id: str | None = None) -> Delivery:
    """Publish a suspicious-activity event and return its delivery to the ``tests.activity`` consumer. Steps of a
    chain ("<chain>:<i>") share the chain's correlation id."""
    if correlation_id is None and payload.get("kind") == "step":
        correlation_id = payload["detail"].rpartition(":")[0]
    row = publish("event-suspicious-activity", payload, instance=instance, correlation_id=correlation_id)
    return Delivery.objects.get(event=row, consumer=ACTIVITY)

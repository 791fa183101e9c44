"""Small helpers the bus's tests share: a suspicious-activity payload for the test consumers, and its delivery."""

from __future__ import annotations

from events import publish
from events.models import Delivery
from tests.events.consumers_for_tests import ACTIVITY

__all__ = ["ACTIVITY", "activity", "publish_and_relay"]


def activity(kind: str, detail: str = "x", user_id: int | None = None) -> dict:
    """A payload the ``tests.activity`` consumer acts on by ``kind`` (record, boom, step, chain, chain-boom)."""
    return {"kind": kind, "detail": detail, "user_id": user_id}


def publish_and_relay(payload: dict, instance=None) -> Delivery:
    """Publish a suspicious-activity event and return its delivery to the ``tests.activity`` consumer."""
    row = publish("event-suspicious-activity", payload, instance=instance)
    return Delivery.objects.get(event=row, consumer=ACTIVITY)

"""Helpers for the saga's tests (inventory, payments, orders): record what the domain signals published."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.dispatch import Signal

from inventory import signals as inventory_signals
from orders import signals as orders_signals
from payments import signals as payments_signals

SAGA_SIGNALS: dict[str, Signal] = {
    "order_created": orders_signals.order_created,
    "order_canceled": orders_signals.order_canceled,
    "order_approved": orders_signals.order_approved,
    "policy_upsert_requested": orders_signals.policy_upsert_requested,
    "policy_remove_requested": orders_signals.policy_remove_requested,
    "product_reserved": inventory_signals.product_reserved,
    "product_reservation_failed": inventory_signals.product_reservation_failed,
    "payment_processed": payments_signals.payment_processed,
    "suspicious_activity": payments_signals.suspicious_activity,
    "order_suspicious_activity": orders_signals.suspicious_activity,
}


@dataclass(frozen=True)
class Sent:
    signal: str
    instance_id: int | None
    payload: dict[str, Any]
    causation_id: str | None


class SignalRecorder:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._receivers: list[tuple[Signal, Callable[..., None]]] = []

    def connect(self) -> None:
        for name, signal in SAGA_SIGNALS.items():
            def receiver(sender: Any, *, _name: str = name, instance: Any = None, payload: Any = None,
                         causation_id: str | None = None, **kwargs: Any) -> None:
                self.sent.append(Sent(_name, getattr(instance, "pk", instance), payload, causation_id))
            signal.connect(receiver, weak=False, dispatch_uid=f"saga-test-recorder-{name}")
            self._receivers.append((signal, receiver))

    def disconnect(self) -> None:
        for name, signal in SAGA_SIGNALS.items():
            signal.disconnect(dispatch_uid=f"saga-test-recorder-{name}")

    def names(self) -> list[str]:
        return [s.signal for s in self.sent]

    def clear(self) -> None:
        self.sent.clear()


@contextmanager
def recording() -> Iterator[SignalRecorder]:
    recorder = SignalRecorder()
    recorder.connect()
    try:
        yield recorder
    finally:
        recorder.disconnect()


def run_concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread (own DB connection), released together; returns results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def client_for(profile: Any) -> Any:
    """An API client authenticated as the profile's user acting in its instance with its role."""
    from rest_framework.test import APIClient

    from tests.factories import context_for

    client = APIClient()
    client.force_authenticate(user=profile.user, token=context_for(profile))
    return client

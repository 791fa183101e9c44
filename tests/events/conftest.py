from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from accounts.models import Instance
from events.consumers import consumer, subscriptions_for, unregister
from tests.events import consumers_for_tests
from tests.factories import InstanceFactory
from tests.support import Worker, start_worker, stop_workers

# Short bounds so the integration tests run in seconds (the worker reads them from its environment).
WORKER_ENV = {
    "EVENTS_TEST_CONSUMERS": "1",
    "EVENTS_EXTRA_CONSUMER_MODULES": "tests.events.consumers_for_tests",
    "EVENTS_SWEEP_INTERVAL_SECONDS": "0.5",
    "EVENTS_REDELIVER_AFTER_SECONDS": "3",
    "EVENTS_RETRY_BASE_SECONDS": "0.2",
    "EVENTS_RETRY_MAX_SECONDS": "0.5",
    "EVENTS_MAX_ATTEMPTS": "3",
}


@pytest.fixture
def instance(db) -> Instance:
    return InstanceFactory()


@pytest.fixture
def test_consumers(db) -> Iterator[Any]:
    """Register the test consumers in this process (the relay creates their deliveries) and empty their table.

    ``tests.activity`` is the only consumer of event-suspicious-activity meanwhile: payments.record_alert (its
    real consumer) is off the registry of this process, which is where publishing creates deliveries, so no
    worker gets a delivery for it. tests/payments tests that consumer through the bus."""
    consumers_for_tests.reset_effects()
    real = [sub for sub in subscriptions_for("event-suspicious-activity") if sub.name != consumers_for_tests.ACTIVITY]
    for sub in real:
        unregister(sub.name)
    consumers_for_tests.register()
    try:
        yield consumers_for_tests
    finally:
        consumers_for_tests.unregister_all()
        for sub in real:
            consumer(sub.event_name, name=sub.name, queue=sub.queue)(sub.handler)


@pytest.fixture
def bus_settings(settings) -> Any:
    settings.EVENTS_MAX_ATTEMPTS = 3
    settings.EVENTS_RETRY_BASE_SECONDS = 0.2
    settings.EVENTS_RETRY_MAX_SECONDS = 0.5
    settings.EVENTS_REDELIVER_AFTER_SECONDS = 3
    return settings


class Workers:
    def __init__(self) -> None:
        self.started: list[Worker] = []

    def start(self, *, queues: tuple[str, ...] = (consumers_for_tests.QUEUE, "events"), beat: bool = True,
              env: dict[str, str] | None = None, **kwargs: Any) -> Worker:
        worker = start_worker(queues=queues, beat=beat, env={**WORKER_ENV, **(env or {})}, **kwargs)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        stop_workers(self.started)


@pytest.fixture
def workers(transactional_db, test_consumers, bus_settings) -> Iterator[Workers]:
    """Start real workers for a test; all stopped before the database is flushed. Empties this run's Redis DB."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    pool = Workers()
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(autouse=True)
def _relay_not_paused():
    """A test that made the relay fail must not leave it paused for the next one."""
    from events import relay

    relay._paused_until = 0.0
    yield
    relay._paused_until = 0.0

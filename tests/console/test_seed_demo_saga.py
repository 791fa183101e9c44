"""``seed_demo --orders N``: the orders flow through the saga on a real worker, with a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from audit.models import AuditEntry
from orders.models import Order
from tests.support import Worker, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker() -> Iterator[Worker]:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    started = start_worker(env={"EVENTS_SWEEP_INTERVAL_SECONDS": "0.5", "LOG_LEVEL": "WARNING"})
    try:
        yield started
    finally:
        started.stop()


def test_seed_demo_orders_flow_through_the_saga(worker):
    out, err = StringIO(), StringIO()

    call_command("seed_demo", "--orders", "4", "--wait", "60", stdout=out, stderr=err)

    assert sorted(Order.objects.values_list("instance__slug", "status")) == [
        ("acme", "approved"), ("acme", "approved"), ("globex", "approved"), ("globex", "approved")]
    assert out.getvalue().rstrip().endswith("placed 4 orders\norders: 4 approved")
    assert "placing: 100%" in err.getvalue() and "settled: 100%" in err.getvalue()
    assert not AuditEntry.objects.filter(action="operator_cancel").exists()

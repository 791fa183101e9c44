"""Done-when tests of the bus: real ``celery worker`` processes, real Redis and PostgreSQL.

Bounds are shortened through the workers' environment (see conftest.WORKER_ENV): sweep every 0.5 s, resend a
delivery not done after 3 s, 3 attempts with 0.2-0.5 s backoff.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from events import publish
from events.apps import EventsConfig
from events.catalogue import CATALOGUE
from events.models import Delivery, OutboxEvent, RejectedMessage
from events.services import event_from_row, events_replay
from events.tasks import deliver
from tests.events.conftest import WORKER_ENV
from tests.support import RedisServer, wait_until, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ACTIVITY = "tests.activity"

EXAMPLES = {
    "event-account-created": {"user_id": 1, "email": "a@example.com", "instance": None},
    "event-account-deleted": {"user_id": 1},
    "event-account-authenticated": {"user_id": 1, "instance": None, "role": "customer"},
    "event-upsert-policy": {"policies": ["1:get:orders:1"]},
    "event-policy-updated": {"subject_ids": [1], "resource_types": ["orders"], "version": 1},
    "event-remove-policy": {"policies": ["1:get:orders:1"]},
    "event-order-created": {"order_id": 1, "customer_id": 1, "lines": [{"product_id": 1, "quantity": 2}],
                            "currency": "EUR"},
    "event-order-canceled": {"order_id": 1, "reason": "customer"},
    "event-order-approved": {"order_id": 1},
    "event-product-reserved": {"order_id": 1, "customer_id": 1, "amount": "2.00", "currency": "EUR"},
    "event-err-reserving-product": {"order_id": 1, "reason": "out_of_stock"},
    "event-payment": {"order_id": 1, "payment_id": 1, "status": "succeeded", "amount": "2.00", "reason": ""},
    "event-suspicious-activity": {"kind": "record", "detail": "signal", "user_id": None},
}


def activity(kind: str, detail: str) -> dict:
    return {"kind": kind, "detail": detail, "user_id": None}


def details(effects) -> list[str]:
    return [e[2] for e in effects]


def state(consumer: str = ACTIVITY) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Delivery.objects.filter(consumer=consumer).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def all_done(expected: int, consumer: str = ACTIVITY):
    return lambda: state(consumer) == {"done": expected}


def test_every_catalogued_producer_path_reaches_its_consumer(workers, test_consumers, instance):
    """Each connected domain signal (or publish() where the producer's signal does not exist yet) -> outbox ->
    relay -> worker -> consumer."""
    import importlib

    workers.start()
    via_signal = []
    for spec in CATALOGUE:
        paths = EventsConfig.connected_signals.get(spec.name, [])
        if paths:
            module, _, attr = paths[0].rpartition(".")
            getattr(importlib.import_module(module), attr).send(sender=None, instance=instance,
                                                                 payload=EXAMPLES[spec.name])
            via_signal.append(spec.name)
        else:
            publish(spec.name, EXAMPLES[spec.name], instance=instance)

    expected = sorted((f"tests.sink.{s.name}" if s.name != "event-suspicious-activity" else ACTIVITY, s.name)
                      for s in CATALOGUE)
    wait_until(lambda: len(test_consumers.effects()) >= len(CATALOGUE), timeout=30,
               message=lambda: str(test_consumers.effects()))
    effects = test_consumers.effects()
    assert sorted((consumer, name) for consumer, name, _ in effects) == expected
    assert {detail for consumer, _, detail in effects if consumer != ACTIVITY} == {instance.slug}
    assert len(via_signal) >= 9  # orders, inventory, payments, authz signals are in


def test_rolled_back_transaction_never_reaches_a_consumer(workers, test_consumers):
    workers.start()
    with pytest.raises(RuntimeError), transaction.atomic():
        publish("event-suspicious-activity", activity("record", "rolled back"), instance=None)
        raise RuntimeError("abort")
    publish("event-suspicious-activity", activity("record", "committed"), instance=None)

    wait_until(all_done(1), timeout=20)
    time.sleep(1.5)  # three sweeps: nothing else turns up
    assert details(test_consumers.effects()) == ["committed"]
    assert OutboxEvent.objects.count() == 1


def test_process_dying_between_commit_and_send_is_covered_by_the_sweep(workers, test_consumers, settings):
    settings.EVENTS_RELAY_ON_COMMIT = False  # as if this process died right after COMMIT
    publish("event-suspicious-activity", activity("record", "orphan"), instance=None)
    assert state() == {"pending": 1}
    assert test_consumers.redis_client().llen("events_test") == 0  # nothing was sent

    workers.start()

    wait_until(all_done(1), timeout=20)
    assert details(test_consumers.effects()) == ["orphan"]


def test_nothing_lost_when_the_worker_is_sigkilled_mid_task(workers, test_consumers):
    worker = workers.start(pool="prefork", concurrency=1)
    for i in range(4):
        publish("event-suspicious-activity", activity("sleep", f"1.{i}"), instance=None)
    redis_client = test_consumers.redis_client()
    wait_until(lambda: redis_client.keys("events-test:started:*"), timeout=20)

    worker.kill()  # main process and pool child at once
    applied_before_restart = len(test_consumers.effects())
    assert applied_before_restart < 4
    workers.start(pool="prefork", concurrency=1)

    wait_until(all_done(4), timeout=60, message=lambda: str(state()))
    assert sorted(details(test_consumers.effects())) == ["1.0", "1.1", "1.2", "1.3"]


def test_a_consumer_that_kills_its_worker_every_time_ends_dead_lettered_with_the_reason(workers, test_consumers):
    """A failure outside the consumer's Python code (here SIGKILL of the pool process; an OOM kill or the hard time
    limit look the same) counts as an attempt: after EVENTS_MAX_ATTEMPTS (3 here) the delivery is dead."""
    worker = workers.start(pool="prefork", concurrency=1)
    killer = publish("event-suspicious-activity", activity("kill", "k"), instance=None)
    publish("event-suspicious-activity", activity("record", "after"), instance=None)

    wait_until(lambda: state() == {"dead": 1, "done": 1}, timeout=60, message=lambda: str(state()) + worker.log()[-3000:])
    dead = Delivery.objects.get(event=killer)
    assert (dead.failures, dead.running_since) == (3, None)
    assert dead.last_error.startswith("the run begun at ")
    assert dead.last_error.endswith("did not finish (its worker was killed, ran out of memory or hit the hard time "
                                    "limit)")
    kills = int(test_consumers.redis_client().get(f"events-test:killed:{killer.id}"))
    time.sleep(1.5)  # three sweeps: a dead letter is not run again
    assert int(test_consumers.redis_client().get(f"events-test:killed:{killer.id}")) == kills
    assert details(test_consumers.effects()) == ["after"]


def test_a_paused_worker_past_the_visibility_timeout_holds_its_delivery_and_the_second_run_skips(workers,
                                                                                                  test_consumers):
    """The first run is paused (SIGSTOP) inside its consumer, after its first statement took the delivery's run lock;
    the message comes back to the second worker after the visibility timeout, and the sweep resends it: both runs
    step aside without running the consumer, and the first, resumed, commits."""
    short = {"CELERY_VISIBILITY_TIMEOUT": "2", "CELERY_UNACKED_RESTORE_INTERVAL": "1"}
    first = workers.start(env=short, beat=False)
    row = publish("event-suspicious-activity", activity("hold", "2"), instance=None)
    redis_client = test_consumers.redis_client()
    wait_until(lambda: redis_client.get(f"events-test:started:{row.id}"), timeout=20)

    first.pause()  # holds the message unacked and the delivery's run lock, mid-consumer
    second = workers.start(env=short)  # with beat: its sweep resends the delivery after 3 s
    wait_until(lambda: second.log().count("'skipped'") >= 2, timeout=30, message=second.log)  # redelivered, resent
    assert int(redis_client.get(f"events-test:started:{row.id}")) == first.pid  # the second never ran it
    assert state() == {"pending": 1}
    first.resume()

    wait_until(lambda: state() == {"done": 1}, timeout=30, message=lambda: str(state()))
    # the worker logs the task's result just after its transaction committed
    wait_until(lambda: "'done'" in first.log(), timeout=10, message=first.log)
    assert "'done'" not in second.log()
    assert details(test_consumers.effects()) == ["2"]
    assert Delivery.objects.get(event=row).failures == 0


def test_nothing_lost_when_redis_restarts_while_events_are_published(workers, test_consumers, tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        env = {"REDIS_URL": server.url(0)}
        workers.start(env=env)
        publisher = subprocess.Popen(
            [sys.executable, "-m", "tests.events.publisher_for_tests", "40", "0.03", "r"],
            env=worker_env({**WORKER_ENV, **env}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_until(lambda: OutboxEvent.objects.count() >= 10, timeout=20)
        server.kill()  # a crash: whatever AOF had not flushed is gone
        time.sleep(0.5)
        server.start()
        output = publisher.communicate(timeout=60)[0].decode()
        assert publisher.returncode == 0, output
        assert "published 40" in output

        wait_until(all_done(40), timeout=60, message=lambda: str(state()))
        assert sorted(details(test_consumers.effects())) == sorted(f"r{i}" for i in range(40))
    finally:
        server.stop(save=False)


def test_duplicates_injected_on_purpose_change_nothing(workers, test_consumers):
    worker = workers.start()
    for i in range(3):
        publish("event-suspicious-activity", activity("record", f"d{i}"), instance=None)
    publish("event-suspicious-activity", activity("chain", "c"), instance=None)
    wait_until(all_done(5), timeout=20, message=lambda: str(state()))

    for delivery in Delivery.objects.filter(consumer=ACTIVITY).select_related("event"):
        envelope = event_from_row(delivery.event).to_dict()
        for _ in range(3):  # both message forms: the delivery id alone, and with its consumer and event
            deliver.apply_async(args=[delivery.pk], queue=delivery.queue)
            deliver.apply_async(args=[delivery.pk, delivery.consumer, envelope], queue=delivery.queue)
    events_replay(since=OutboxEvent.objects.order_by("occurred_at").first().occurred_at)
    deliver.apply_async(args=["not-an-id"], queue="events_test")

    wait_until(lambda: worker.log().count("'skipped'") >= 5 * 7, timeout=30)
    wait_until(lambda: RejectedMessage.objects.count() == 1, timeout=10)
    assert state() == {"done": 5}
    assert sorted(details(test_consumers.effects())) == ["c", "c/next", "d0", "d1", "d2"]
    assert OutboxEvent.objects.count() == 5
    assert RejectedMessage.objects.get().reason == (
        "expected an integer delivery id, optionally with its consumer and event")


def test_shuffled_delivery_converges_to_the_in_order_state(workers, test_consumers):
    steps = list(range(1, 9))
    shuffled = steps[:]
    random.Random(2026).shuffle(shuffled)
    assert shuffled != steps
    for i in steps:
        publish("event-suspicious-activity", activity("step", f"in-order:{i}"), instance=None, correlation_id="in-order")
    for i in shuffled:
        publish("event-suspicious-activity", activity("step", f"shuffled:{i}"), instance=None, correlation_id="shuffled")

    workers.start()

    wait_until(all_done(16), timeout=60, message=lambda: str(state()))
    applied = details(test_consumers.effects())
    in_order = [d.split(":")[1] for d in applied if d.startswith("in-order:")]
    out_of_order = [d.split(":")[1] for d in applied if d.startswith("shuffled:")]
    assert in_order == out_of_order == [str(i) for i in steps]


def test_failures_retry_with_backoff_then_dead_letter_and_retry_from_the_cli(workers, test_consumers):
    workers.start()
    publish("event-suspicious-activity", activity("flaky", "2"), instance=None)
    boom = publish("event-suspicious-activity", activity("boom", "x"), instance=None)

    wait_until(lambda: state() == {"done": 1, "dead": 1}, timeout=30, message=lambda: str(state()))
    assert details(test_consumers.effects()) == ["2 after 2 failures"]
    dead = Delivery.objects.get(event=boom)
    assert (dead.failures, dead.last_error) == (3, "RuntimeError: boom x")
    out = StringIO()
    call_command("events", "dlq", stdout=out)
    assert out.getvalue().splitlines()[-1] == "1 dead"

    out = StringIO()
    call_command("events", "retry", str(dead.pk), stdout=out)
    assert out.getvalue().strip() == "re-delivered 1"
    wait_until(lambda: Delivery.objects.get(pk=dead.pk).failures == 3 and Delivery.objects.get(pk=dead.pk).status
               == "dead" and "RuntimeError" in Delivery.objects.get(pk=dead.pk).last_error
               and Delivery.objects.get(pk=dead.pk).updated_at > dead.updated_at, timeout=30)


def test_real_producers_and_consumers_chain_through_the_bus(workers, test_consumers):
    """The real saga: orders -> inventory -> payments -> orders, each hop a real consumer publishing the next
    event in its own transaction; one correlation id across the chain (no policy event: customers reach their
    orders by ownership)."""
    from inventory.services import product_create
    from orders.services import order_place
    from payments.services import wallet_create
    from saaskit.celery import APP_QUEUES
    from tests.factories import InstanceFactory, UserFactory

    workers.start(queues=("default", *APP_QUEUES, "events_test"))
    instance, customer = InstanceFactory(), UserFactory()
    wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="12.50", stock_on_hand=5)

    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 2}])

    chain = ["event-order-created", "event-product-reserved", "event-payment", "event-order-approved"]
    wait_until(lambda: {name for _, name, _ in test_consumers.effects()} >= set(chain),
               timeout=60, message=lambda: str(list(Delivery.objects.values_list("consumer", "status"))))
    wait_until(lambda: not Delivery.objects.exclude(status="done").exists(), timeout=30,
               message=lambda: str(list(Delivery.objects.exclude(status="done").values_list("consumer", "status"))))
    order.refresh_from_db()
    assert order.status == "approved"
    events = {row.name: row for row in OutboxEvent.objects.filter(name__in=chain)}
    first = events["event-order-created"]
    assert [events[name].causation_id for name in chain] == [None, *(str(events[n].id) for n in chain[:-1])]
    assert {events[name].correlation_id for name in chain} == {str(first.id)}
    assert {events[name].instance_id for name in chain} == {instance.pk}
    real = set(Delivery.objects.exclude(consumer__startswith="tests.").values_list("consumer", flat=True))
    assert {"inventory.reserve_for_order", "payments.charge_for_order", "orders.apply_payment",
            "inventory.commit_for_order"} <= real
    assert not OutboxEvent.objects.filter(name="event-upsert-policy").exists()



def test_many_hosts_layout_two_worker_pools_and_two_beats_complete_a_burst_with_no_duplicate_effect(workers,
                                                                                                   test_consumers):
    """README "Running on many hosts": a worker pool for the saga's queues and another for the rest, each with its
    own beat (two beats: the sweep and purge lock keeps that safe); a burst of orders ends approved, each charged and
    each unit taken once."""
    from decimal import Decimal

    from inventory.models import Product
    from inventory.services import product_create
    from orders.models import Order
    from orders.services import order_place
    from payments.models import Payment, Wallet
    from payments.services import wallet_create
    from tests.factories import InstanceFactory, UserFactory

    saga = workers.start(queues=("orders", "inventory", "payments"))
    rest = workers.start(queues=("default", "accounts", "authz", "events", "events_test"))
    instance, customer = InstanceFactory(), UserFactory()
    wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="2.50", stock_on_hand=50)

    orders = [order_place(instance=instance, customer=customer, currency="USD",
                          lines=[{"product_id": apple.pk, "quantity": 2}]) for _ in range(12)]

    wait_until(lambda: Order.objects.filter(status="approved").count() == 12, timeout=90,
               message=lambda: str(list(Order.objects.values_list("status", flat=True))))
    wait_until(lambda: not Delivery.objects.exclude(status="done").exists(), timeout=60,
               message=lambda: str(list(Delivery.objects.exclude(status="done").values_list("consumer", "status"))))
    apple.refresh_from_db()
    assert (apple.stock_on_hand, apple.stock_reserved) == (50 - 24, 0)
    assert Wallet.objects.get(user=customer).balance == Decimal("100.00") - 12 * Decimal("5.00")
    assert Payment.objects.filter(status="succeeded").count() == 12
    assert sorted(Payment.objects.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    assert Product.objects.count() == 1
    assert " ready." in saga.log() and " ready." in rest.log()

"""The bus's writes without a worker: publish, relay, sweep, retry, replay, purge (running one delivery:
test_delivery.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import publish, relay
from events.choices import DeliveryStatus
from events.consumers import consumer, get_subscription, subscriptions_for, unregister
from events.errors import (
    ConsumerRegistrationError,
    EventError,
    PayloadSchemaError,
    UnknownEventError,
)
from events.models import Delivery, OutboxEvent, RejectedMessage
from events.services import (
    bus_sweep,
    deliveries_retry,
    delivery_run,
    event_from_row,
    events_purge,
    events_replay,
)
from tests.events.bus import ACTIVITY, activity, publish_and_relay

# --- publish -------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_publish_writes_the_outbox_row_and_its_deliveries_in_one_insert(instance, test_consumers):
    with CaptureQueriesContext(connection) as queries:
        row = publish("event-order-approved", {"order_id": 7}, instance=instance, correlation_id="corr-1",
                      causation_id="cause-1")

    assert len(queries.captured_queries) == 1
    sql = queries.captured_queries[0]["sql"]
    assert sql.startswith("WITH e AS (INSERT INTO events_outboxevent") and "INSERT INTO events_delivery" in sql
    stored = OutboxEvent.objects.get()
    assert stored.id == row.id and isinstance(stored.id, uuid.UUID)
    assert (stored.name, stored.version, stored.payload) == ("event-order-approved", 1, {"order_id": 7})
    assert (stored.instance_id, stored.instance_slug) == (instance.pk, instance.slug)
    assert (stored.correlation_id, stored.causation_id) == ("corr-1", "cause-1")
    assert sorted(Delivery.objects.values_list("consumer", "queue", "status", "failures")) == [
        ("inventory.commit_for_order", "inventory", "pending", 0),
        ("tests.sink.event-order-approved", "events_test", "pending", 0),
    ]
    assert Delivery.objects.filter(event=stored, sent_at=stored.occurred_at).count() == 2


@pytest.mark.django_db
def test_publish_of_an_event_nobody_consumes_is_a_plain_insert():
    with CaptureQueriesContext(connection) as queries:
        publish("event-account-created", {"user_id": 1, "email": "a@b.c"}, instance=None)

    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
    assert (OutboxEvent.objects.count(), Delivery.objects.count()) == (1, 0)


@pytest.mark.django_db
def test_publish_without_correlation_starts_a_chain_of_its_own():
    row = publish("event-account-deleted", {"user_id": 3}, instance=None)

    assert (row.correlation_id, row.causation_id, row.instance_id, row.instance_slug) == (str(row.id), None, None, None)


@pytest.mark.django_db
def test_publish_unknown_event_raises_and_writes_nothing():
    with pytest.raises(UnknownEventError, match="unknown event 'event-nope'"):
        publish("event-nope", {}, instance=None)

    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "message"), [
    ({"order_id": "7"}, "order_id: '7' is not of type 'integer'"),
    ({}, "(payload): 'order_id' is a required property"),
    ({"order_id": 7, "extra": 1}, "(payload): Additional properties are not allowed ('extra' was unexpected)"),
    ([1], "(payload): [1] is not of type 'object'"),
])
def test_publish_payload_breaking_the_schema_raises_at_the_call_site(payload, message):
    with pytest.raises(PayloadSchemaError) as raised:
        publish("event-order-approved", payload, instance=None)

    assert str(raised.value) == f"event-order-approved payload does not match its schema v1: {message}"
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_publish_rejects_an_instance_that_is_not_one():
    with pytest.raises(EventError, match="instance must be an Instance"):
        publish("event-order-approved", {"order_id": 1}, instance="acme")
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_publish_rejects_ids_too_long_to_store():
    with pytest.raises(EventError, match="causation_id is longer than 64 characters"):
        publish("event-order-approved", {"order_id": 1}, instance=None, causation_id="x" * 65)
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_domain_signal_publishes_through_the_catalogue(instance):
    from orders.signals import order_approved

    order_approved.send(sender=None, instance=instance, payload={"order_id": 5}, causation_id="c-9")

    row = OutboxEvent.objects.get()
    assert (row.name, row.payload, row.instance_id, row.causation_id) == (
        "event-order-approved", {"order_id": 5}, instance.pk, "c-9")


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_publishes_nothing(test_consumers, monkeypatch):
    sent = []
    monkeypatch.setattr(relay, "_put", lambda args, queue, argsrepr: sent.append((args, queue)))
    with pytest.raises(RuntimeError), transaction.atomic():
        publish("event-suspicious-activity", activity("record"), instance=None)
        raise RuntimeError("rollback")
    publish("event-suspicious-activity", activity("record"), instance=None)  # autocommit: sent at once

    assert OutboxEvent.objects.count() == 1
    delivery = Delivery.objects.get()
    assert sent == [([delivery.pk, ACTIVITY, event_from_row(delivery.event).to_dict()], "events_test")]


@pytest.mark.django_db
def test_commit_sends_one_message_per_delivery_to_its_queue(test_consumers, django_capture_on_commit_callbacks,
                                                            monkeypatch):
    sent = []
    monkeypatch.setattr(relay, "_put", lambda args, queue, argsrepr: sent.append((args, queue)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = publish("event-order-canceled", {"order_id": 1, "reason": "customer"}, instance=None)
        publish("event-order-approved", {"order_id": 1}, instance=None)

    assert len(callbacks) == 2
    by_consumer = dict(Delivery.objects.values_list("consumer", "pk"))
    canceled, approved = (event_from_row(e).to_dict() for e in OutboxEvent.objects.order_by("occurred_at"))
    expected = [
        ("inventory.release_for_order", "inventory", canceled), ("payments.refund_for_order", "payments", canceled),
        ("tests.sink.event-order-canceled", "events_test", canceled),
        ("inventory.commit_for_order", "inventory", approved), ("tests.sink.event-order-approved", "events_test", approved),
    ]
    # each message names its delivery and carries its consumer and the event's envelope (the AsyncAPI wire form)
    assert sorted(sent, key=lambda m: m[0][0]) == sorted(
        [([by_consumer[name], name, event], queue) for name, queue, event in expected], key=lambda m: m[0][0])
    assert canceled["payload"] == {"order_id": 1, "reason": "customer"} and canceled["id"] == str(row.id)
    assert Delivery.objects.filter(event=row).count() == 3


# --- consumer registration ------------------------------------------------------------------------------------

def test_consumer_for_an_unknown_event_is_refused():
    with pytest.raises(ConsumerRegistrationError, match="unknown event"):
        consumer("event-nope", name="tests.nope")(lambda event: None)
    assert get_subscription("tests.nope") is None


def test_consumer_name_reused_for_another_event_is_refused():
    consumer("event-order-approved", name="tests.once", queue="events_test")(lambda event: None)
    try:
        with pytest.raises(ConsumerRegistrationError, match="already registered"):
            consumer("event-order-created", name="tests.once", queue="events_test")(lambda event: None)
        assert [s.event_name for s in subscriptions_for("event-order-approved") if s.name == "tests.once"] == [
            "event-order-approved"]
    finally:
        unregister("tests.once")


@pytest.mark.django_db
def test_dead_letter_retry_gives_a_fresh_budget(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("record", "r"))
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, failures=3, last_error="x")

    assert deliveries_retry(delivery_ids=[delivery.pk]) == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.failures) == ("pending", 0)
    assert delivery_run(delivery_id=delivery.pk).outcome == "done"
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "r")]


@pytest.mark.django_db
def test_retry_leaves_deliveries_that_are_not_dead_alone(test_consumers):
    delivery = publish_and_relay(activity("record"))
    delivery_run(delivery_id=delivery.pk)

    assert deliveries_retry(delivery_ids=[delivery.pk]) == 0
    assert deliveries_retry(all_dead=True) == 0
    assert Delivery.objects.get(pk=delivery.pk).status == "done"


# --- sweep ---------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_sweep_resends_stale_and_due_and_wakes_old_parked(test_consumers, bus_settings):
    import redis

    redis.Redis.from_url(bus_settings.REDIS_URL).delete("events_test")  # no backlog left by other tests
    stale = publish_and_relay(activity("record"))
    due = publish_and_relay(activity("record"))
    parked = publish_and_relay(activity("record"))
    fresh = publish_and_relay(activity("record"))
    long_ago = timezone.now() - timedelta(seconds=10)
    Delivery.objects.filter(pk=stale.pk).update(sent_at=long_ago)
    Delivery.objects.filter(pk=due.pk).update(status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now())
    Delivery.objects.filter(pk=parked.pk).update(status=DeliveryStatus.PARKED)
    Delivery.objects.filter(pk=parked.pk).update(updated_at=long_ago)  # auto_now: a second update sets it back

    result = bus_sweep()

    assert (result.resent, result.retried, result.woken) == (1, 1, 1)
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert [statuses[d.pk] for d in (stale, due, parked, fresh)] == ["pending"] * 4
    assert Delivery.objects.get(pk=stale.pk).sent_at > long_ago
    assert bus_sweep() == type(result)(0, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("job", ["sweep", "purge"])
def test_two_periodic_runs_at_once_do_the_work_once(test_consumers, bus_settings, monkeypatch, job):
    """celery beat on two hosts: the second sweep (or purge) that starts while the first runs does nothing."""
    import threading

    import redis
    from django.db import connections

    from events import services

    client = redis.Redis.from_url(bus_settings.REDIS_URL)
    client.delete("events_test")
    bus_settings.EVENTS_RELAY_ON_COMMIT = False
    lost = publish_and_relay(activity("record", "lost"))  # committed, never sent: overdue
    Delivery.objects.filter(pk=lost.pk).update(sent_at=timezone.now() - timedelta(seconds=10))
    old = publish_and_relay(activity("record", "old"))
    Delivery.objects.filter(pk=old.pk).update(status=DeliveryStatus.DONE)
    OutboxEvent.objects.filter(pk=old.event_id).update(occurred_at=timezone.now() - timedelta(days=60))
    inside, release = threading.Event(), threading.Event()
    locked = services._periodic_lock

    def first_holds_its_lock(job_id):
        got = locked(job_id)
        if threading.current_thread().name == "first":
            inside.set()
            assert release.wait(20)
        return got

    monkeypatch.setattr(services, "_periodic_lock", first_holds_its_lock)
    run = services.bus_sweep if job == "sweep" else services.events_purge
    results = {}

    def first():
        try:
            results["first"] = run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=first, name="first")
    thread.start()
    try:
        assert inside.wait(20)
        results["second"] = run()
    finally:
        release.set()
        thread.join(20)
    try:
        queued = client.llen("events_test")
    finally:
        client.delete("events_test")

    if job == "sweep":
        assert (results["first"].resent, results["first"].skipped) == (1, False)
        assert (results["second"].resent, results["second"].skipped) == (0, True)
        assert queued == 1
    else:
        assert (results["first"], results["second"]) == (1, 0)
        assert not OutboxEvent.objects.filter(pk=old.event_id).exists()


# --- replay and purge --------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_replay_creates_missing_deliveries_and_resends_relying_on_idempotency(test_consumers):
    done = publish_and_relay(activity("record", "d"))
    delivery_run(delivery_id=done.pk)
    Delivery.objects.filter(pk=done.pk).delete()  # e.g. a consumer added after the event
    other = publish_and_relay(activity("record", "o"))
    old = publish_and_relay(activity("record", "old"))
    OutboxEvent.objects.filter(pk=old.event_id).update(occurred_at=timezone.now() - timedelta(days=2))

    result = events_replay(since=timezone.now() - timedelta(hours=1), name="event-suspicious-activity",
                           consumer=ACTIVITY)

    assert (result.events, result.created, result.sent) == (2, 1, 2)
    recreated = Delivery.objects.get(event_id=done.event_id)
    assert delivery_run(delivery_id=recreated.pk).outcome == "done"
    assert delivery_run(delivery_id=other.pk).outcome == "done"
    # the first one was applied once before and once on replay: consumers must be idempotent on their own too
    assert [e[2] for e in test_consumers.effects()] == ["d", "d", "o"]


@pytest.mark.django_db
def test_replay_of_done_deliveries_changes_nothing(test_consumers):
    delivery = publish_and_relay(activity("record", "d"))
    delivery_run(delivery_id=delivery.pk)

    result = events_replay(since=timezone.now() - timedelta(hours=1))

    assert (result.events, result.created, result.sent) == (1, 0, 1)
    assert delivery_run(delivery_id=delivery.pk).outcome == "skipped"
    assert [e[2] for e in test_consumers.effects()] == ["d"]


@pytest.mark.django_db
def test_purge_deletes_old_fully_done_events_only(test_consumers, settings):
    settings.EVENTS_RETENTION_DAYS = 7
    old_done = publish_and_relay(activity("record"))
    delivery_run(delivery_id=old_done.pk)
    old_open = publish_and_relay(activity("record"))
    old_dead = publish_and_relay(activity("record"))
    Delivery.objects.filter(pk=old_dead.pk).update(status=DeliveryStatus.DEAD)
    recent_done = publish_and_relay(activity("record"))
    delivery_run(delivery_id=recent_done.pk)
    OutboxEvent.objects.exclude(pk=recent_done.event_id).update(occurred_at=timezone.now() - timedelta(days=8))

    old_rejected = RejectedMessage.objects.create(task_name="events.deliver", body="[]", reason="r")
    RejectedMessage.objects.filter(pk=old_rejected.pk).update(created_at=timezone.now() - timedelta(days=8))
    new_rejected = RejectedMessage.objects.create(task_name="events.deliver", body="[]", reason="r")

    assert events_purge() == 1

    assert list(RejectedMessage.objects.values_list("pk", flat=True)) == [new_rejected.pk]

    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {
        old_open.event_id, old_dead.event_id, recent_done.event_id}
    assert not Delivery.objects.filter(pk=old_done.pk).exists()


@pytest.mark.django_db
def test_a_lost_message_is_resent_while_2000_others_wait_and_those_are_not(test_consumers, bus_settings):
    """A queue with a backlog: 2,000 deliveries overdue whose messages still wait in it (slow, not lost), and one
    whose message Redis lost. The sweep resends the lost one only."""
    import redis

    from events import relay

    client = redis.Redis.from_url(bus_settings.REDIS_URL)
    client.delete("events_test")
    with connection.cursor() as cursor:  # 2,001 events and their deliveries to tests.activity, sent 10 s ago
        cursor.execute(
            "WITH e AS (INSERT INTO events_outboxevent (id, name, version, occurred_at, correlation_id, payload) "
            "SELECT gen_random_uuid(), 'event-suspicious-activity', 1, now() - interval '10 seconds', 'c', "
            "jsonb_build_object('kind', 'record', 'detail', i::text, 'user_id', NULL) FROM generate_series(0, 2000) i "
            "RETURNING id, occurred_at) "
            "INSERT INTO events_delivery (event_id, consumer, queue, status, failures, last_error, sent_at, created_at, "
            "updated_at) SELECT id, 'tests.activity', 'events_test', 'pending', 0, '', occurred_at, occurred_at, "
            "occurred_at FROM e RETURNING id")
        ids = sorted(row[0] for row in cursor.fetchall())
    lost, waiting = ids[1000], [pk for pk in ids if pk != ids[1000]]
    assert relay.send([(pk, "events_test") for pk in waiting]) == 2000
    try:
        result = bus_sweep()
        queued = client.llen("events_test")
    finally:
        client.delete("events_test")

    assert result.resent == 1
    assert queued == 2001  # the lost one added; no duplicate of what waits
    resent = Delivery.objects.filter(sent_at__gt=timezone.now() - timedelta(seconds=5))
    assert list(resent.values_list("pk", flat=True)) == [lost]


@pytest.mark.django_db
def test_the_sweep_counts_messages_a_worker_took_lately_as_waiting_and_resends_older_ones(test_consumers,
                                                                                          bus_settings):
    import json
    import time

    import redis

    from events.services import _message_delivery_id

    held = publish_and_relay(activity("record"))
    message = {"headers": {"task": "events.deliver", "argsrepr": f"[{held.pk}, 'tests.activity', {{...}}]"}}
    assert _message_delivery_id(json.dumps([message, "", "events_test"]).encode()) == held.pk
    assert _message_delivery_id(json.dumps({"headers": {"task": "events.noop", "argsrepr": "(5,)"}}).encode()) is None
    assert _message_delivery_id(b"garbage") is None

    client = redis.Redis.from_url(bus_settings.REDIS_URL)
    client.hset("unacked", "tag-1", json.dumps([message, "", "events_test"]))
    client.zadd("unacked_index", {"tag-1": time.time() - 1})  # handed to a worker a second ago
    Delivery.objects.filter(pk=held.pk).update(sent_at=timezone.now() - timedelta(seconds=10))
    try:
        assert bus_sweep().resent == 0
        client.zadd("unacked_index", {"tag-1": time.time() - 60})  # held a minute (3 s here): its worker is gone
        assert bus_sweep().resent == 1
    finally:
        client.hdel("unacked", "tag-1")
        client.zrem("unacked_index", "tag-1")


# --- clocks ------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("web_minutes, worker_minutes", [(-3, 0), (3, 0), (0, 3), (0, -3)])
def test_hosts_whose_clocks_are_minutes_off_change_nothing(test_consumers, bus_settings, monkeypatch, web_minutes,
                                                            worker_minutes):
    """Every time the bus writes or compares is the database's: a web host publishing with a clock 3 minutes slow
    or fast, and a worker sweeping and retrying with another, change nothing."""
    import redis

    redis.Redis.from_url(bus_settings.REDIS_URL).delete("events_test")
    real_now = timezone.now

    def database_now():
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]

    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=web_minutes))
    delivery = publish_and_relay(activity("boom", "x"))  # in a test's transaction: not sent, so lost if overdue
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=worker_minutes))

    delivery.refresh_from_db()
    published_at = database_now()
    assert abs(delivery.event.occurred_at - published_at) < timedelta(seconds=5)
    assert abs(delivery.sent_at - published_at) < timedelta(seconds=5)
    assert bus_sweep().resent == 0  # sent a moment ago by the database's clock: not overdue (3 s here)

    assert delivery_run(delivery_id=delivery.pk).outcome == "retrying"
    delivery.refresh_from_db()
    failed_at = database_now()
    assert timedelta(0) < delivery.next_attempt_at - failed_at + timedelta(seconds=1) < timedelta(seconds=2)
    assert abs(delivery.updated_at - failed_at) < timedelta(seconds=5)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=published_at)  # due by the database's clock
    assert bus_sweep().retried == 1

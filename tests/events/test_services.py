"""The bus without a worker: publish, relay, one delivery run, sweep, retry, replay, purge."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import publish
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
    _backoff_seconds,
    bus_sweep,
    deliveries_retry,
    delivery_run,
    event_from_row,
    events_purge,
    events_replay,
)

ACTIVITY = "tests.activity"


def activity(kind: str, detail: str = "x", user_id: int | None = None) -> dict:
    return {"kind": kind, "detail": detail, "user_id": user_id}


def publish_and_relay(payload: dict, instance=None) -> Delivery:
    row = publish("event-suspicious-activity", payload, instance=instance)
    return Delivery.objects.get(event=row, consumer=ACTIVITY)


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
    from events.tasks import deliver

    sent = []
    monkeypatch.setattr(deliver, "apply_async", lambda args, queue: sent.append((args, queue)))
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
    from events.tasks import deliver

    sent = []
    monkeypatch.setattr(deliver, "apply_async", lambda args, queue: sent.append((args, queue)))
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


# --- running one delivery ---------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_delivery_runs_once_and_a_redelivery_changes_nothing(test_consumers):
    delivery = publish_and_relay(activity("record", "a"))

    first = delivery_run(delivery_id=delivery.pk)
    second = delivery_run(delivery_id=delivery.pk)

    assert (first.outcome, second.outcome) == ("done", "skipped")
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "a")]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failures, delivery.last_error) == ("done", 0, "")
    assert delivery.done_at is not None


@pytest.mark.django_db
def test_unknown_delivery_id_is_missing():
    assert delivery_run(delivery_id=999_999).outcome == "missing"


@pytest.mark.django_db
def test_failure_rolls_back_the_consumer_and_schedules_a_retry_with_backoff(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("chain-boom", "c"))
    before = timezone.now()

    result = delivery_run(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert result.outcome == "retrying"
    assert (delivery.status, delivery.failures, delivery.last_error) == (
        "retrying", 1, "RuntimeError: failed after publishing")
    assert before + timedelta(seconds=0.1) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=0.2)
    assert test_consumers.effects() == []
    assert OutboxEvent.objects.count() == 1  # the follow-up it published was rolled back with it


@pytest.mark.django_db
def test_a_retry_not_yet_due_is_skipped(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("boom"))
    delivery_run(delivery_id=delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert delivery_run(delivery_id=delivery.pk).outcome == "skipped"
    assert Delivery.objects.get(pk=delivery.pk).failures == 1


@pytest.mark.django_db
def test_last_failure_dead_letters_with_the_error(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("boom", "b"))

    outcomes = []
    for _ in range(3):
        outcomes.append(delivery_run(delivery_id=delivery.pk).outcome)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())

    delivery.refresh_from_db()
    assert outcomes == ["retrying", "retrying", "dead"]
    assert (delivery.status, delivery.failures, delivery.last_error) == ("dead", 3, "RuntimeError: boom b")
    assert delivery_run(delivery_id=delivery.pk).outcome == "skipped"


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


@pytest.mark.django_db
def test_malformed_event_is_parked_as_failed_with_the_reason(test_consumers):
    row = OutboxEvent.objects.create(name="event-suspicious-activity", version=1, occurred_at=timezone.now(),
                                     correlation_id="c", payload={"kind": 5})
    delivery = Delivery.objects.create(event=row, consumer=ACTIVITY, queue="events_test")

    result = delivery_run(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert result.outcome == "dead"
    assert delivery.status == "dead"
    assert delivery.last_error == ("malformed event: event-suspicious-activity payload does not match its schema v1: "
                                   "(payload): 'detail' is a required property")
    assert test_consumers.effects() == []


@pytest.mark.django_db
def test_unknown_event_name_in_the_log_is_parked_as_failed(test_consumers):
    row = OutboxEvent.objects.create(name="event-gone", version=1, occurred_at=timezone.now(), correlation_id="c",
                                     payload={})
    delivery = Delivery.objects.create(event=row, consumer=ACTIVITY, queue="events_test")

    assert delivery_run(delivery_id=delivery.pk).outcome == "dead"
    assert Delivery.objects.get(pk=delivery.pk).last_error == "malformed event: unknown event 'event-gone'"


@pytest.mark.django_db
def test_consumer_missing_from_this_process_is_retried_not_lost(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("record"))
    Delivery.objects.filter(pk=delivery.pk).update(consumer="tests.gone")

    assert delivery_run(delivery_id=delivery.pk).outcome == "retrying"
    assert Delivery.objects.get(pk=delivery.pk).last_error == (
        "LookupError: consumer 'tests.gone' is not registered in this worker")


@pytest.mark.django_db
def test_events_published_by_a_consumer_commit_with_it_and_carry_its_ids(test_consumers):
    delivery = publish_and_relay(activity("chain", "c"))

    assert delivery_run(delivery_id=delivery.pk).outcome == "done"

    cause = delivery.event
    follow_up = OutboxEvent.objects.exclude(pk=cause.pk).get()
    assert follow_up.payload == {"kind": "record", "detail": "c/next", "user_id": None}
    assert (follow_up.causation_id, follow_up.correlation_id) == (str(cause.id), cause.correlation_id)


@pytest.mark.django_db
def test_a_delivery_is_one_claim_statement_then_commit(test_consumers):
    warm = publish_and_relay(activity("record", "warm"))
    delivery_run(delivery_id=warm.pk)  # the first run on a connection also prepares the claim
    delivery = publish_and_relay(activity("record", "one"))

    with CaptureQueriesContext(connection) as queries:
        assert delivery_run(delivery_id=delivery.pk).outcome == "done"

    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert statements[0] == f"EXECUTE events_claim_v1({delivery.pk}, 50)"  # in a test's transaction: no BEGIN
    assert [sql.split(" (")[0] for sql in statements[1:]] == ["INSERT INTO events_test_effect"]  # the consumer's
    assert Delivery.objects.get(pk=delivery.pk).status == "done"


@pytest.mark.django_db
def test_a_session_that_lost_the_prepared_claim_prepares_it_again(test_consumers):
    first = publish_and_relay(activity("record", "1"))
    second = publish_and_relay(activity("record", "2"))
    assert delivery_run(delivery_id=first.pk).outcome == "done"
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE events_claim_v1")  # what DISCARD ALL in a connection pooler does

    assert delivery_run(delivery_id=second.pk).outcome == "done"
    assert [e[2] for e in test_consumers.effects()] == ["1", "2"]


@pytest.mark.django_db
def test_with_prepared_claims_off_the_claim_is_planned_each_time(test_consumers, settings):
    settings.EVENTS_PREPARED_CLAIM = False
    delivery = publish_and_relay(activity("record", "inline"))

    with CaptureQueriesContext(connection) as queries:
        assert delivery_run(delivery_id=delivery.pk).outcome == "done"
        assert delivery_run(delivery_id=delivery.pk).outcome == "skipped"

    claims = [q["sql"] for q in queries.captured_queries if "claimed AS" in q["sql"]]
    assert len(claims) == 2 and all(sql.startswith("WITH claimed AS") for sql in claims)
    assert f"WHERE id = {delivery.pk} AND" in claims[0] and "$1" not in claims[0]
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "inline")]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_claim_begins_one_that_commits_or_rolls_back_whole(test_consumers, bus_settings):
    ok = publish_and_relay(activity("chain", "ok"))
    failing = publish_and_relay(activity("chain-boom", "no"))

    with CaptureQueriesContext(connection) as queries:
        outcomes = [delivery_run(delivery_id=d.pk).outcome for d in (ok, failing)]

    assert outcomes == ["done", "retrying"]
    claims = [q["sql"] for q in queries.captured_queries if "EXECUTE events_claim_v1" in q["sql"]]
    assert claims[0].endswith(f"BEGIN; EXECUTE events_claim_v1({ok.pk}, 50)")  # one round trip: BEGIN and claim
    assert claims[1].endswith(f"BEGIN; EXECUTE events_claim_v1({failing.pk}, 50)")
    assert connection.get_autocommit() and not connection.in_atomic_block
    assert (Delivery.objects.get(pk=ok.pk).status, Delivery.objects.get(pk=failing.pk).status) == ("done", "retrying")
    follow_ups = OutboxEvent.objects.filter(causation_id__isnull=False)
    assert [e.payload["detail"] for e in follow_ups] == ["ok/next"]  # the failing one's follow-up rolled back
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "ok")]


def test_the_claim_begins_like_psycopg_would_for_the_connection():
    from types import SimpleNamespace

    import psycopg

    from events.services import _begin_statement

    assert _begin_statement(SimpleNamespace(isolation_level=None, read_only=None)) == "BEGIN"
    assert _begin_statement(SimpleNamespace(isolation_level=psycopg.IsolationLevel.SERIALIZABLE, read_only=True)) == (
        "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
    assert _begin_statement(SimpleNamespace(isolation_level=psycopg.IsolationLevel.REPEATABLE_READ,
                                            read_only=False)) == "BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE"


# --- running a delivery from its message -------------------------------------------------------------------

def message_for(delivery: Delivery, **changes) -> dict:
    """What the relay puts in the message: the consumer and the event's envelope (optionally altered)."""
    envelope = event_from_row(delivery.event).to_dict()
    envelope.update(changes)
    return {"delivery_id": delivery.pk, "consumer": delivery.consumer, "event": envelope}


def bus_statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "events_" in q["sql"] and "events_test" not in q["sql"]
            and "SAVEPOINT" not in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_a_message_carrying_its_event_costs_the_bus_one_round_trip(test_consumers):
    delivery = publish_and_relay(activity("record", "one-trip"))
    message = message_for(delivery)

    with CaptureQueriesContext(connection) as queries:
        assert delivery_run(**message).outcome == "done"

    statements = bus_statements(queries)
    assert len(statements) == 1
    assert statements[0].startswith(f"SELECT events_finish({delivery.pk}, 'tests.activity', ")
    assert statements[0].endswith(", 50); COMMIT")  # the consumer began the transaction with its own INSERT
    assert connection.get_autocommit() and not connection.in_atomic_block
    assert Delivery.objects.get(pk=delivery.pk).status == "done"
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "one-trip")]


@pytest.mark.django_db(transaction=True)
def test_a_message_for_a_consumer_that_writes_nothing_sends_begin_with_the_finish(test_consumers):
    seen = []
    consumer("event-order-approved", name="tests.quiet", queue="events_test")(seen.append)
    try:
        row = publish("event-order-approved", {"order_id": 7}, instance=None)
        delivery = Delivery.objects.get(event=row, consumer="tests.quiet")
        message = message_for(delivery)

        with CaptureQueriesContext(connection) as queries:
            assert delivery_run(**message).outcome == "done"
    finally:
        unregister("tests.quiet")

    (statement,) = bus_statements(queries)
    assert statement.startswith("BEGIN; SELECT events_finish(") and statement.endswith("; COMMIT")
    assert [event.payload for event in seen] == [{"order_id": 7}]
    assert Delivery.objects.get(pk=delivery.pk).status == "done"


@pytest.mark.django_db
def test_a_duplicated_message_changes_nothing(test_consumers):
    delivery = publish_and_relay(activity("chain", "dup"))
    message = message_for(delivery)

    outcomes = [delivery_run(**message).outcome for _ in range(3)]

    assert outcomes == ["done", "skipped", "skipped"]
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "dup")]
    assert OutboxEvent.objects.filter(causation_id=str(delivery.event_id)).count() == 1  # one follow-up, not three


@pytest.mark.django_db
@pytest.mark.parametrize("changes", [
    {"payload": {"kind": "record", "detail": "forged", "user_id": None}},
    {"instance": {"id": 999, "slug": "elsewhere"}},
    {"causation_id": "someone-else"},
    {"id": str(uuid.uuid4())},
])
def test_a_message_that_differs_from_the_log_is_never_committed_the_log_is_run_instead(test_consumers, changes):
    delivery = publish_and_relay(activity("record", "truth"))

    assert delivery_run(**message_for(delivery, **changes)).outcome == "done"

    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "truth")]
    assert Delivery.objects.get(pk=delivery.pk).status == "done"


@pytest.mark.django_db
def test_a_message_naming_another_consumer_is_run_from_the_log(test_consumers):
    delivery = publish_and_relay(activity("record", "mine"))
    message = {**message_for(delivery), "consumer": "tests.sink.event-order-created"}

    assert delivery_run(**message).outcome == "done"
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "mine")]


@pytest.mark.django_db
@pytest.mark.parametrize("envelope", ["garbage", {"id": "x"}, None])
def test_a_message_whose_event_is_not_an_envelope_is_run_from_the_log(test_consumers, envelope):
    delivery = publish_and_relay(activity("record", "shape"))

    assert delivery_run(delivery_id=delivery.pk, consumer=ACTIVITY, event=envelope).outcome == "done"
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "shape")]


@pytest.mark.django_db
def test_a_failing_consumer_from_its_message_is_recorded_by_the_run_from_the_log(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("chain-boom", "f"))

    result = delivery_run(**message_for(delivery))

    delivery.refresh_from_db()
    assert result.outcome == "retrying"
    assert (delivery.status, delivery.failures, delivery.last_error) == (
        "retrying", 1, "RuntimeError: failed after publishing")
    assert test_consumers.effects() == []
    assert OutboxEvent.objects.count() == 1  # the follow-up it published was rolled back, both times it ran


@pytest.mark.django_db
def test_not_ready_from_a_message_parks_and_a_completion_from_a_message_wakes(test_consumers):
    second = publish_and_relay(activity("step", "m:2"))
    first = publish_and_relay(activity("step", "m:1"))

    assert delivery_run(**message_for(second)).outcome == "parked"
    assert delivery_run(**message_for(second)).outcome == "skipped"  # parked ones wait to be woken
    assert delivery_run(**message_for(first)).outcome == "done"
    assert Delivery.objects.get(pk=second.pk).status == "pending"  # woken
    assert delivery_run(**message_for(second)).outcome == "done"
    assert [e[2] for e in test_consumers.effects()] == ["m:1", "m:2"]


@pytest.mark.django_db
def test_a_retry_not_yet_due_is_skipped_from_its_message_and_its_writes_rolled_back(test_consumers, bus_settings):
    delivery = publish_and_relay(activity("record", "later"))
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RETRYING, failures=1,
                                                   next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert delivery_run(**message_for(delivery)).outcome == "skipped"
    assert test_consumers.effects() == []
    assert Delivery.objects.get(pk=delivery.pk).failures == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_message", [True, False])
def test_a_consumer_that_marks_its_transaction_for_rollback_has_failed(test_consumers, bus_settings, with_message):
    def rolls_back(event):
        test_consumers.record("tests.rollback", event, "undone")
        transaction.set_rollback(True)

    consumer("event-order-approved", name="tests.rollback", queue="events_test")(rolls_back)
    try:
        row = publish("event-order-approved", {"order_id": 3}, instance=None)
        delivery = Delivery.objects.get(event=row, consumer="tests.rollback")
        message = message_for(delivery) if with_message else {"delivery_id": delivery.pk}
        result = delivery_run(**message)
    finally:
        unregister("tests.rollback")

    delivery.refresh_from_db()
    assert (result.outcome, delivery.status, delivery.failures) == ("retrying", "retrying", 1)
    assert delivery.last_error == "_ConsumerRolledBack: the consumer marked its transaction for rollback"
    assert test_consumers.effects("tests.rollback") == [] and test_consumers.effects(ACTIVITY) == []


def test_an_envelope_without_a_time_zone_is_not_taken_from_the_message():
    from events.services import _event_from_message

    envelope = {"id": str(uuid.uuid4()), "name": "event-order-approved", "version": 1, "instance": None,
                "correlation_id": "c", "causation_id": None, "payload": {"order_id": 1}}
    assert _event_from_message({**envelope, "time": "2026-12-01T07:00:00+00:00"}) is not None
    assert _event_from_message({**envelope, "time": "2026-12-01T07:00:00"}) is None
    assert _event_from_message({**envelope, "time": "yesterday"}) is None
    assert _event_from_message({**envelope, "id": "not-a-uuid", "time": "2026-12-01T07:00:00+00:00"}) is None


# --- parking -----------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_not_ready_parks_and_a_completion_wakes_the_parked(test_consumers):
    second = publish_and_relay(activity("step", "p:2"))
    third = publish_and_relay(activity("step", "p:3"))
    first = publish_and_relay(activity("step", "p:1"))

    assert [delivery_run(delivery_id=d.pk).outcome for d in (third, second)] == ["parked", "parked"]
    assert Delivery.objects.get(pk=second.pk).last_error == "not ready: p:1 not applied yet"
    assert delivery_run(delivery_id=second.pk).outcome == "skipped"  # parked ones wait to be woken

    assert delivery_run(delivery_id=first.pk).outcome == "done"  # wakes 2 and 3
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["done", "pending", "pending"]
    assert delivery_run(delivery_id=third.pk).outcome == "parked"  # still waits for 2
    assert delivery_run(delivery_id=second.pk).outcome == "done"  # wakes 3
    assert delivery_run(delivery_id=third.pk).outcome == "done"
    assert [e[2] for e in test_consumers.effects()] == ["p:1", "p:2", "p:3"]


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
    assert bus_sweep() == type(result)(0, 0, 0)


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.EVENTS_RETRY_BASE_SECONDS = 1
    settings.EVENTS_RETRY_MAX_SECONDS = 10
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        samples = [_backoff_seconds(failures) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 1


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
def test_a_completion_wakes_at_most_the_batch_longest_parked_first(test_consumers, settings):
    settings.EVENTS_WAKE_BATCH = 2
    parked = [publish_and_relay(activity("step", f"w:{i}")) for i in (2, 3, 4)]
    for delivery, minutes in zip(parked, (1, 3, 2), strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PARKED)
        Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))

    assert delivery_run(delivery_id=publish_and_relay(activity("record")).pk).outcome == "done"

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert [statuses[d.pk] for d in parked] == ["parked", "pending", "pending"]


@pytest.mark.django_db
def test_sweep_leaves_overdue_deliveries_of_a_queue_with_a_backlog_alone(test_consumers, bus_settings, settings):
    import redis

    from events.tasks import noop

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("events_test", "inventory")
    overdue = publish_and_relay(activity("record"))
    order = publish("event-order-approved", {"order_id": 1}, instance=None)
    inventory = Delivery.objects.get(event=order, consumer="inventory.commit_for_order")
    long_ago = timezone.now() - timedelta(seconds=10)
    Delivery.objects.filter(pk__in=[overdue.pk, inventory.pk]).update(sent_at=long_ago)
    noop.apply_async(queue="events_test")  # a backlog on events_test only
    try:
        result = bus_sweep()
    finally:
        client.delete("events_test", "inventory")

    assert result.resent == 1
    assert Delivery.objects.get(pk=overdue.pk).sent_at == long_ago
    assert Delivery.objects.get(pk=inventory.pk).sent_at > long_ago

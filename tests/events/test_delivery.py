"""Running one delivery: from the event log (claim, run, commit) and from a message that carries its event (run,
then one round trip to finish); failures, parking and waking."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import publish
from events.choices import DeliveryStatus
from events.consumers import consumer, unregister
from events.delivery import _backoff_seconds, delivery_run
from events.models import Delivery, OutboxEvent
from events.services import bus_sweep, event_from_row
from tests.events.bus import ACTIVITY, activity, publish_and_relay

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
def test_a_run_from_the_log_begins_claims_runs_and_finishes(test_consumers):
    delivery = publish_and_relay(activity("record", "one"))

    with CaptureQueriesContext(connection) as queries:
        assert delivery_run(delivery_id=delivery.pk).outcome == "done"

    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert statements[0] == f"SELECT events_begin({delivery.pk}, 8)"
    assert statements[1] == f"SELECT events_claim({delivery.pk})"  # in a test's transaction: no BEGIN
    assert statements[2].startswith("INSERT INTO events_test_effect")  # the consumer's
    assert statements[3] == f"SELECT events_finish({delivery.pk}, 'tests.activity', NULL, 50, true)"
    assert len(statements) == 4
    delivery.refresh_from_db()
    assert (delivery.status, delivery.running_since, delivery.failures) == ("done", None, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("session_state", [
    "PREPARE events_claim_v1 (bigint, integer) AS SELECT $1, $2",  # PgBouncer: another client's statement (42P05)
    "DEALLOCATE ALL",  # PgBouncer / DISCARD ALL: the statements this client prepared are gone (26000)
])
def test_a_pooled_session_with_or_without_prepared_statements_runs_deliveries(test_consumers, session_state):
    first = publish_and_relay(activity("record", "1"))
    second = publish_and_relay(activity("record", "2"))
    assert delivery_run(delivery_id=first.pk).outcome == "done"
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
        if session_state.startswith("PREPARE"):
            cursor.execute(session_state)

    assert delivery_run(delivery_id=second.pk).outcome == "done"
    assert [e[2] for e in test_consumers.effects()] == ["1", "2"]
    assert Delivery.objects.get(pk=second.pk).failures == 0


@pytest.mark.django_db
def test_a_failure_of_the_bus_during_a_run_counts_as_an_attempt(test_consumers, bus_settings, monkeypatch):
    from events import delivery as delivery_module

    def lost(*args, **kwargs):
        raise delivery_module.psycopg.OperationalError("server closed the connection unexpectedly")

    delivery = publish_and_relay(activity("record", "x"))
    monkeypatch.setattr(delivery_module, "_finish", lost)

    result = delivery_run(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (result.outcome, delivery.status, delivery.failures, delivery.running_since) == (
        "retrying", "retrying", 1, None)
    assert delivery.last_error == "OperationalError: server closed the connection unexpectedly"
    assert test_consumers.effects() == []


@pytest.mark.django_db
def test_a_run_that_died_is_counted_by_the_next_and_the_last_dead_letters_with_the_reason(test_consumers,
                                                                                          bus_settings):
    delivery = publish_and_relay(activity("record", "k"))
    began = timezone.now() - timedelta(minutes=1)

    outcomes = []
    for _ in range(3):  # as if each run from the log had been killed after events_begin
        Delivery.objects.filter(pk=delivery.pk).update(running_since=began)
        outcomes.append(delivery_run(delivery_id=delivery.pk).outcome)
        if outcomes[-1] == "done":
            Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PENDING)

    delivery.refresh_from_db()
    assert outcomes == ["done", "done", "dead"]
    assert (delivery.status, delivery.failures, delivery.running_since) == ("dead", 3, None)
    assert delivery.last_error.startswith("the run begun at ")
    assert delivery.last_error.endswith(" did not finish (its worker was killed, ran out of memory or hit the hard "
                                        "time limit)")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_claim_begins_one_that_commits_or_rolls_back_whole(test_consumers, bus_settings):
    ok = publish_and_relay(activity("chain", "ok"))
    failing = publish_and_relay(activity("chain-boom", "no"))

    with CaptureQueriesContext(connection) as queries:
        outcomes = [delivery_run(delivery_id=d.pk).outcome for d in (ok, failing)]

    assert outcomes == ["done", "retrying"]
    claims = [q["sql"] for q in queries.captured_queries if "events_claim(" in q["sql"]]
    assert claims == [f"BEGIN; SELECT events_claim({ok.pk})",  # one round trip: BEGIN and claim
                      f"BEGIN; SELECT events_claim({failing.pk})"]
    assert connection.get_autocommit() and not connection.in_atomic_block
    assert (Delivery.objects.get(pk=ok.pk).status, Delivery.objects.get(pk=failing.pk).status) == ("done", "retrying")
    follow_ups = OutboxEvent.objects.filter(causation_id__isnull=False)
    assert [e.payload["detail"] for e in follow_ups] == ["ok/next"]  # the failing one's follow-up rolled back
    assert test_consumers.effects() == [(ACTIVITY, "event-suspicious-activity", "ok")]


def test_the_claim_begins_like_psycopg_would_for_the_connection():
    from types import SimpleNamespace

    import psycopg

    from events.delivery import _begin_statement

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
def test_a_message_carrying_its_event_takes_its_run_lock_with_the_begin_and_ends_in_one_round_trip(test_consumers):
    delivery = publish_and_relay(activity("record", "one-trip"))
    message = message_for(delivery)

    with CaptureQueriesContext(connection) as queries:
        assert delivery_run(**message).outcome == "done"

    statements = bus_statements(queries)
    assert len(statements) == 2
    # the run lock goes out with the BEGIN psycopg would have sent alone before the consumer's INSERT
    assert statements[0] == f"BEGIN; SELECT events_run_lock({delivery.pk}, '{delivery.event.correlation_id}')"
    assert statements[1].startswith(f"SELECT events_finish({delivery.pk}, 'tests.activity', ")
    assert statements[1].endswith(", 50, false); COMMIT")  # announces nothing: may commit asynchronously
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
def test_the_owed_check_is_planned_into_the_statements_that_use_it():
    """events_owed (migration 0011) is inlined: called as a function, its body was parsed and planned again for
    every statement (events_finish's UPDATE on the message path: about 50 us of PostgreSQL's CPU per delivery).
    Inlined, it still says which deliveries are owed, by the database's clock."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (VERBOSE) SELECT id FROM events_delivery WHERE events_owed(status, next_attempt_at)")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT events_owed(s, t) FROM (VALUES ('pending', NULL::timestamptz), ('retrying', NULL), "
            "('retrying', clock_timestamp() - interval '1 second'), ('retrying', clock_timestamp() + interval '1 hour'), "
            "('parked', NULL), ('done', NULL), ('dead', NULL)) AS v (s, t)")
        owed = [row[0] for row in cursor.fetchall()]

    assert "events_owed" not in plan and "clock_timestamp()" in plan
    assert owed == [True, True, True, False, False, False, False]


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
    from events.delivery import _event_from_message

    envelope = {"id": str(uuid.uuid4()), "name": "event-order-approved", "version": 1, "instance": None,
                "correlation_id": "c", "causation_id": None, "payload": {"order_id": 1}}
    assert _event_from_message({**envelope, "time": "2026-12-01T07:00:00+00:00"}) is not None
    assert _event_from_message({**envelope, "time": "2026-12-01T07:00:00"}) is None
    assert _event_from_message({**envelope, "time": "yesterday"}) is None
    assert _event_from_message({**envelope, "id": "not-a-uuid", "time": "2026-12-01T07:00:00+00:00"}) is None


# --- two runs of one delivery at once -----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_from_message", [True, False])
def test_a_second_run_of_a_delivery_skips_while_the_first_holds_its_run_lock(test_consumers, first_from_message):
    """A message that waited past the redelivery age, and its resend: one lock order (the run lock, tried; the
    consumer's rows; the delivery row last), so the second run steps aside instead of deadlocking."""
    import threading

    from django.db import connections

    inside, release = threading.Event(), threading.Event()

    def holds(event):
        test_consumers.record("tests.holds", event, "first")  # its first statement takes the run lock
        inside.set()
        assert release.wait(20)

    consumer("event-order-approved", name="tests.holds", queue="events_test")(holds)
    try:
        row = publish("event-order-approved", {"order_id": 9}, instance=None)
        delivery = Delivery.objects.get(event=row, consumer="tests.holds")
        first_args = message_for(delivery) if first_from_message else {"delivery_id": delivery.pk}
        outcomes = {}

        def first():
            try:
                outcomes["first"] = delivery_run(**first_args).outcome
            finally:
                connections.close_all()

        thread = threading.Thread(target=first)
        thread.start()
        assert inside.wait(20)
        second = [delivery_run(delivery_id=delivery.pk), delivery_run(**message_for(delivery))]
        release.set()
        thread.join(20)
    finally:
        release.set()
        unregister("tests.holds")

    assert [(r.outcome, r.detail) for r in second] == [("skipped", "running"), ("skipped", "running")]
    assert outcomes == {"first": "done"}
    assert test_consumers.effects("tests.holds") == [("tests.holds", "event-order-approved", "first")]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failures, delivery.running_since) == ("done", 0, None)


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


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.EVENTS_RETRY_BASE_SECONDS = 1
    settings.EVENTS_RETRY_MAX_SECONDS = 10
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        samples = [_backoff_seconds(failures) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 1


@pytest.mark.django_db
def test_a_completion_wakes_at_most_the_batch_longest_parked_first(test_consumers, settings):
    settings.EVENTS_WAKE_BATCH = 2
    parked = [publish_and_relay(activity("step", f"w:{i}")) for i in (2, 3, 4)]
    for delivery, minutes in zip(parked, (1, 3, 2), strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PARKED, park_correlation="w",
                                                       park_event="*")
        Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))

    completion = publish_and_relay(activity("record"), correlation_id="w")
    assert delivery_run(delivery_id=completion.pk).outcome == "done"

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert [statuses[d.pk] for d in parked] == ["parked", "pending", "pending"]


@pytest.mark.django_db
def test_a_completion_wakes_only_the_deliveries_parked_for_it(test_consumers):
    waiting = publish_and_relay(activity("step", "k:2"))  # waits for an activity in correlation "k"
    other_chain = publish_and_relay(activity("step", "other:2"))
    for_orders = publish_and_relay(activity("record", "o"), correlation_id="k")
    assert [delivery_run(delivery_id=d.pk).outcome for d in (waiting, other_chain)] == ["parked", "parked"]
    Delivery.objects.filter(pk=for_orders.pk).update(status=DeliveryStatus.PARKED, park_correlation="k",
                                                     park_event="event-order-created")
    parked = Delivery.objects.get(pk=waiting.pk)
    assert (parked.park_event, parked.park_correlation) == ("event-suspicious-activity", "k")
    assert parked.parked_at is not None

    assert delivery_run(delivery_id=publish_and_relay(activity("step", "k:1")).pk).outcome == "done"

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert [statuses[d.pk] for d in (waiting, other_chain, for_orders)] == ["pending", "parked", "parked"]
    assert delivery_run(delivery_id=waiting.pk).outcome == "done"
    assert Delivery.objects.get(pk=waiting.pk).parked_at is None


@pytest.mark.django_db
def test_the_sweep_dead_letters_what_stayed_parked_too_long(test_consumers, settings):
    settings.EVENTS_PARK_MAX_SECONDS = 600
    old = publish_and_relay(activity("step", "old:2"))
    recent = publish_and_relay(activity("step", "recent:2"))
    assert [delivery_run(delivery_id=d.pk).outcome for d in (old, recent)] == ["parked", "parked"]
    with connection.cursor() as cursor:  # parked eleven minutes ago by the database's clock
        cursor.execute("UPDATE events_delivery SET parked_at = now() - interval '11 minutes' WHERE id = %s",
                       [old.pk])

    result = bus_sweep()

    assert result.expired == 1
    old.refresh_from_db()
    assert old.status == "dead"
    assert old.last_error.startswith("prerequisite never arrived (parked since ")
    assert old.last_error.endswith("): not ready: old:1 not applied yet")
    assert Delivery.objects.get(pk=recent.pk).status == "parked"


@pytest.mark.django_db(transaction=True)
def test_a_prerequisite_completing_while_a_delivery_is_being_parked_wakes_it(test_consumers):
    """The lost wakeup: the consumer finds its prerequisite missing, the prerequisite commits (waking nobody), then
    the delivery would be written parked and wait forever. Run again under the correlation lock, it finds it."""
    import threading

    from django.db import connections

    from tests.events import consumers_for_tests

    checked, go_on = threading.Event(), threading.Event()
    second = publish_and_relay(activity("step", "race:2"))
    first = publish_and_relay(activity("step", "race:1"))
    original = consumers_for_tests._step_done

    def slow_check(detail):
        done = original(detail)
        if not done and not checked.is_set():
            checked.set()
            assert go_on.wait(20)  # the prerequisite commits now, between "not ready" and "parked"
        return done

    consumers_for_tests._step_done = slow_check
    outcome = {}

    def run_second():
        try:
            outcome["second"] = delivery_run(delivery_id=second.pk).outcome
        finally:
            connections.close_all()

    thread = threading.Thread(target=run_second)
    try:
        thread.start()
        assert checked.wait(20)
        assert delivery_run(delivery_id=first.pk).outcome == "done"
        go_on.set()
        thread.join(20)
    finally:
        go_on.set()
        consumers_for_tests._step_done = original

    assert outcome["second"] == "done"
    assert [e[2] for e in test_consumers.effects()] == ["race:1", "race:2"]


# --- synchronous_commit ---------------------------------------------------------------------------------------

def finish_setting(delivery_id: int, consumer: str, *, announces: bool) -> tuple[str, str]:
    """Call events_finish in a savepoint; the synchronous_commit it leaves for the commit, and what it woke."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT events_finish(%s, %s, NULL, 50, %s)", [delivery_id, consumer, announces])
        woken = cursor.fetchone()[0]
        cursor.execute("SELECT current_setting('synchronous_commit')")
        setting = cursor.fetchone()[0]
        transaction.set_rollback(True)
    return setting, woken


@pytest.mark.django_db
def test_a_delivery_commits_asynchronously_only_when_it_announces_nothing_outside(test_consumers):
    quiet = publish_and_relay(activity("record", "q"), correlation_id="sc")
    parked = publish_and_relay(activity("step", "sc:2"))
    assert delivery_run(delivery_id=parked.pk).outcome == "parked"

    # it wakes a parked delivery, whose message goes out after the commit
    assert finish_setting(quiet.pk, ACTIVITY, announces=False) == ("on", f'[[{parked.pk}, "events_test"]]')
    Delivery.objects.filter(pk=parked.pk).update(status=DeliveryStatus.DONE)
    assert finish_setting(quiet.pk, ACTIVITY, announces=False) == ("off", "[]")  # nothing: it may be forgotten
    assert finish_setting(quiet.pk, ACTIVITY, announces=True) == ("on", "[]")  # on_commit callbacks (it published)


@pytest.mark.django_db(transaction=True)
def test_a_consumer_that_publishes_finishes_announcing_it(test_consumers):
    chain = publish_and_relay(activity("chain", "c"))
    record = publish_and_relay(activity("record", "r"))

    with CaptureQueriesContext(connection) as queries:
        assert delivery_run(**message_for(chain)).outcome == "done"
        assert delivery_run(**message_for(record)).outcome == "done"

    finishes = [q["sql"] for q in queries.captured_queries if "events_finish(" in q["sql"]]
    assert [sql.rsplit("50, ", 1)[1] for sql in finishes] == ["true); COMMIT", "false); COMMIT"]  # 50: the wake batch

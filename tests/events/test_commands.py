from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from events import publish, relay
from events.choices import DeliveryStatus
from events.models import Delivery, OutboxEvent
from events.services import delivery_run

ACTIVITY = "tests.activity"


def run(*args: str) -> str:
    out = StringIO()
    call_command("events", *args, stdout=out)
    return out.getvalue()


def delivery(detail: str) -> Delivery:
    row = publish("event-suspicious-activity", {"kind": "record", "detail": detail, "user_id": None}, instance=None)
    return Delivery.objects.get(event=row, consumer=ACTIVITY)


@pytest.mark.django_db
def test_list_prints_every_event_with_signals_consumers_and_counts(test_consumers):
    parked = delivery("p")
    Delivery.objects.filter(pk=parked.pk).update(status=DeliveryStatus.PARKED)

    out = run("list")

    assert "event-order-created v1  (producer: orders)" in out
    assert "    signals:   orders.signals.order_created (connected: orders.signals.order_created)" in out
    assert "    signals:   *.signals.policy_remove_requested (connected: " in out
    assert "    consumers: inventory.reserve_for_order, tests.sink.event-order-created" in out
    assert out.count(" v1  (producer: ") == 13
    assert out.splitlines()[-1] == "deliveries: pending=0, retrying=0, parked=1, done=0, dead=0"


@pytest.mark.django_db
def test_dlq_and_parked_list_their_deliveries(test_consumers):
    dead, parked, done = delivery("dead"), delivery("parked"), delivery("done")
    delivery_run(delivery_id=done.pk)
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.DEAD, failures=8, last_error="RuntimeError: x")
    Delivery.objects.filter(pk=parked.pk).update(status=DeliveryStatus.PARKED, last_error="not ready: y")

    dlq = run("dlq").splitlines()
    parked_out = run("parked").splitlines()

    assert len(dlq) == 2 and dlq[-1] == "1 dead"
    assert dlq[0].startswith(f"{dead.pk}\tevent-suspicious-activity\t{dead.event_id}\t{ACTIVITY}\tfailures=8\t")
    assert dlq[0].endswith("\tRuntimeError: x")
    assert len(parked_out) == 2 and parked_out[-1] == "1 parked"
    assert parked_out[0].startswith(f"{parked.pk}\t") and parked_out[0].endswith("\tnot ready: y")


@pytest.mark.django_db
def test_retry_by_id_and_all(test_consumers):
    first, second = delivery("1"), delivery("2")
    Delivery.objects.filter(pk__in=[first.pk, second.pk]).update(status=DeliveryStatus.DEAD, failures=3)

    assert run("retry", str(first.pk)).strip() == "re-delivered 1"
    assert Delivery.objects.get(pk=first.pk).status == "pending"
    assert Delivery.objects.get(pk=second.pk).status == "dead"
    assert run("retry", "--all").strip() == "re-delivered 1"
    assert sorted(Delivery.objects.values_list("status", "failures")) == [("pending", 0), ("pending", 0)]


@pytest.mark.django_db
def test_retry_refuses_ids_that_are_not_dead_and_changes_nothing(test_consumers):
    pending = delivery("x")

    with pytest.raises(CommandError, match=f"not dead-lettered deliveries: {pending.pk}, 999999"):
        run("retry", str(pending.pk), "999999")
    with pytest.raises(CommandError, match="give delivery ids or --all"):
        run("retry")
    assert Delivery.objects.get(pk=pending.pk).status == "pending"


@pytest.mark.django_db
def test_replay_validates_its_arguments(test_consumers):
    with pytest.raises(CommandError, match="--since: not an ISO 8601 date/time: 'yesterday'"):
        run("replay", "--since", "yesterday")
    with pytest.raises(CommandError, match="unknown event 'event-nope'"):
        run("replay", "--since", "2026-01-01", "--name", "event-nope")
    with pytest.raises(CommandError, match="unknown consumer 'nobody'"):
        run("replay", "--since", "2026-01-01", "--consumer", "nobody")


@pytest.mark.django_db
def test_replay_since_a_naive_time_counts_what_it_sent(test_consumers):
    old = delivery("old")
    OutboxEvent.objects.filter(pk=old.event_id).update(occurred_at=timezone.now() - timedelta(days=3))
    delivery("new")
    since = (timezone.now() - timedelta(days=1)).replace(tzinfo=None).isoformat()

    assert run("replay", "--since", since, "--consumer", ACTIVITY).strip() == "events=1 created=0 sent=1"


@pytest.mark.django_db
def test_sweep_and_purge_report(test_consumers):
    assert run("sweep").strip() == "resent=0 retried=0 woken=0 expired=0"
    assert run("purge").strip() == "purged 0"


@pytest.mark.django_db
def test_backfill_creates_and_sends_the_missing_deliveries_of_a_consumer_added_later(test_consumers, monkeypatch):
    """A rolling deploy: old web processes published without a consumer the new code adds."""
    from events.consumers import consumer, unregister
    sent = []
    monkeypatch.setattr(relay, "_put", lambda args, queue, argsrepr: sent.append((args, queue)))
    before = publish("event-order-approved", {"order_id": 1}, instance=None)
    OutboxEvent.objects.filter(pk=before.pk).update(occurred_at=timezone.now() - timedelta(days=2))
    during = [publish("event-order-approved", {"order_id": i}, instance=None) for i in (2, 3)]
    other = publish("event-order-canceled", {"order_id": 2, "reason": "customer"}, instance=None)
    consumer("event-order-approved", name="tests.late", queue="events_test")(lambda event: None)
    try:
        since = (timezone.now() - timedelta(days=1)).isoformat()
        first = run("backfill", "tests.late", "--since", since)
        again = run("backfill", "tests.late", "--since", since)
        with pytest.raises(CommandError, match="unknown consumer 'nobody'"):
            run("backfill", "nobody", "--since", since)
        with pytest.raises(CommandError, match="--since: not an ISO 8601 date/time: 'soon'"):
            run("backfill", "tests.late", "--since", "soon")
    finally:
        unregister("tests.late")

    assert (first.strip(), again.strip()) == ("created=2 sent=2", "created=0 sent=0")
    late = Delivery.objects.filter(consumer="tests.late")
    assert sorted(late.values_list("event_id", flat=True)) == sorted(e.pk for e in during)
    assert set(late.values_list("status", "queue")) == {("pending", "events_test")}
    assert sorted(args[0] for args, queue in sent) == sorted(late.values_list("pk", flat=True))
    assert not Delivery.objects.filter(event=other, consumer="tests.late").exists()

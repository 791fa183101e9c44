from __future__ import annotations

import pytest

from events import publish
from events.models import Delivery, RejectedMessage
from events.tasks import deliver, sweep


@pytest.mark.django_db
@pytest.mark.parametrize("args", [("x",), (True,), (1, 2), (), (1, "c"), (1, "c", "not an envelope"),
                                  (1, 5, {}), (1, "c", {}, 4)])
def test_deliver_records_malformed_messages_instead_of_crashing(args):
    assert deliver.run(*args) == "rejected"
    rejected = RejectedMessage.objects.get()
    assert (rejected.task_name, rejected.reason) == (
        "events.deliver", "expected an integer delivery id, optionally with its consumer and event")


@pytest.mark.django_db
def test_deliver_runs_the_delivery(test_consumers):
    row = publish("event-suspicious-activity", {"kind": "record", "detail": "t", "user_id": None}, instance=None)
    delivery = Delivery.objects.get(event=row)

    assert deliver.run(delivery.pk) == "done"
    assert deliver.run(delivery.pk) == "skipped"
    assert deliver.run(10**9) == "missing"


@pytest.mark.django_db
def test_deliver_runs_a_delivery_whose_message_carries_its_event(test_consumers):
    from events.services import event_from_row

    row = publish("event-suspicious-activity", {"kind": "record", "detail": "m", "user_id": None}, instance=None)
    delivery = Delivery.objects.get(event=row)
    envelope = event_from_row(row).to_dict()

    assert deliver.run(delivery.pk, delivery.consumer, envelope) == "done"
    assert deliver.run(delivery.pk, delivery.consumer, envelope) == "skipped"
    assert deliver.run(10**9, delivery.consumer, envelope) == "missing"
    assert [e[2] for e in test_consumers.effects()] == ["m"]


def test_tasks_have_stable_names_and_limits():
    assert deliver.name == "events.deliver"
    assert deliver.acks_late is True and deliver.reject_on_worker_lost is True
    assert deliver.soft_time_limit == 60 and deliver.time_limit == 75
    assert sweep.name == "events.sweep"


def test_beat_schedule_sweeps_and_purges_on_the_events_queue(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["events-sweep"]["task"] == "events.sweep"
    assert schedule["events-purge"]["task"] == "events.purge"
    assert {entry["options"]["queue"] for entry in schedule.values() if entry["task"].startswith("events.")} == {
        "events"}


@pytest.mark.django_db(transaction=True)
def test_a_task_reuses_a_quiet_connection_without_a_ping(monkeypatch):
    """Between tasks the worker keeps its connection (CONN_MAX_AGE); CONN_HEALTH_CHECKS would ping it (SELECT 1,
    a round trip per delivery). A connection whose socket has received nothing since its last statement is
    known alive without one: the server sends a FATAL message and closes when it ends a session."""
    from celery.signals import task_postrun, task_prerun
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (first_pid,) = cursor.fetchone()
    pings = []
    monkeypatch.setattr(connection, "is_usable", lambda: pings.append(1) or True)

    task_postrun.send(sender=deliver)  # the end of one task (close_old_connections: a health check is due)
    task_prerun.send(sender=deliver)  # the start of the next
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (second_pid,) = cursor.fetchone()

    assert pings == []
    assert second_pid == first_pid


@pytest.mark.django_db(transaction=True)
def test_a_task_after_a_terminated_connection_gets_a_fresh_one():
    import psycopg
    from celery.signals import task_postrun, task_prerun
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (first_pid,) = cursor.fetchone()
    task_postrun.send(sender=deliver)
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as admin:  # what a restart or failover does
        admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])
        admin.execute("SELECT pg_sleep(0.1)")  # its FATAL message and the close reach the worker's socket

    task_prerun.send(sender=deliver)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (second_pid,) = cursor.fetchone()

    assert second_pid != first_pid

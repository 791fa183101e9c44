from __future__ import annotations

import pytest

from accounts.models import User
from events import publish
from events.choices import DeliveryStatus
from events.models import Delivery


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser(email="root@example.com", password="correct-horse-battery-staple")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_lists_read_only_and_retries_dead_deliveries(admin_client, test_consumers):
    row = publish("event-suspicious-activity", {"kind": "record", "detail": "a", "user_id": None}, instance=None)
    delivery = Delivery.objects.get(event=row)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, failures=3)

    assert admin_client.get("/admin/events/delivery/").status_code == 200
    assert admin_client.get(f"/admin/events/outboxevent/{row.pk}/change/").status_code == 200
    assert admin_client.get("/admin/events/outboxevent/add/").status_code == 403
    response = admin_client.post("/admin/events/delivery/", {"action": "retry_dead", "_selected_action": [delivery.pk]})

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failures) == ("pending", 0)


@pytest.mark.django_db
def test_admin_filters_take_their_choices_from_the_code(admin_client, test_consumers):
    from tests.events.consumers_for_tests import ACTIVITY

    row = publish("event-suspicious-activity", {"kind": "record", "detail": "a", "user_id": None}, instance=None)
    delivery = Delivery.objects.get(event=row, consumer=ACTIVITY)

    page = admin_client.get("/admin/events/delivery/").content.decode()
    filtered = admin_client.get(f"/admin/events/delivery/?consumer={ACTIVITY}&queue={delivery.queue}")
    elsewhere = admin_client.get("/admin/events/delivery/?consumer=inventory.reserve_for_order")
    by_name = admin_client.get("/admin/events/outboxevent/?name=event-suspicious-activity")

    assert f"?consumer={ACTIVITY}" in page and "?consumer=inventory.reserve_for_order" in page
    assert "?queue=inventory" in page
    assert list(filtered.context["cl"].result_list) == [delivery]
    assert list(elsewhere.context["cl"].result_list) == []
    assert list(by_name.context["cl"].result_list) == [row]


def _activity(test_consumers):
    row = publish("event-suspicious-activity", {"kind": "record", "detail": "a", "user_id": None}, instance=None)
    return row, Delivery.objects.get(event=row, consumer=test_consumers.ACTIVITY)


@pytest.mark.django_db
def test_the_delivery_list_shows_unfinished_counts_and_reasons(admin_client, test_consumers):
    dead = [_activity(test_consumers)[1] for _ in range(3)]
    parked = _activity(test_consumers)[1]
    Delivery.objects.filter(pk__in=[d.pk for d in dead[:2]]).update(status=DeliveryStatus.DEAD,
                                                                    last_error="ValueError: boom")
    Delivery.objects.filter(pk=dead[2].pk).update(status=DeliveryStatus.DEAD, last_error="KeyError: 'x'\nmore")
    Delivery.objects.filter(pk=parked.pk).update(status=DeliveryStatus.PARKED, last_error="not ready: no order")
    done = _activity(test_consumers)[1]
    Delivery.objects.filter(pk=done.pk).update(status=DeliveryStatus.DONE)

    response = admin_client.get("/admin/events/delivery/")

    assert response.status_code == 200
    assert [(s, n) for s, _, n, _ in response.context["bus_counts"]] == [
        ("pending", 0), ("retrying", 0), ("parked", 1), ("dead", 3)]
    html = response.content.decode()
    assert '<a href="/admin/events/delivery/?status__exact=dead">3</a>' in html
    assert [(s, r) for s, _, r in response.context["bus_reasons"]] == [
        ("dead", [(test_consumers.ACTIVITY, "ValueError: boom", 2), (test_consumers.ACTIVITY, "KeyError: 'x'", 1)]),
        ("parked", [(test_consumers.ACTIVITY, "not ready: no order", 1)])]


@pytest.mark.django_db
def test_replay_to_a_consumer_creates_the_missing_delivery_and_leaves_done_ones_done(admin_client, test_consumers):
    missing_row, missing = _activity(test_consumers)
    done_row, done = _activity(test_consumers)
    Delivery.objects.filter(pk=missing.pk).delete()  # as if the consumer had been added after the event
    Delivery.objects.filter(pk=done.pk).update(status=DeliveryStatus.DONE)

    form = admin_client.post("/admin/events/outboxevent/", {
        "action": "replay_to_consumer", "_selected_action": [str(missing_row.pk), str(done_row.pk)]})
    assert form.status_code == 200
    assert test_consumers.ACTIVITY in form.content.decode()
    response = admin_client.post("/admin/events/outboxevent/", {
        "action": "replay_to_consumer", "_selected_action": [str(missing_row.pk), str(done_row.pk)],
        "apply": "1", "consumer": test_consumers.ACTIVITY})

    assert response.status_code == 302
    assert Delivery.objects.get(event=missing_row, consumer=test_consumers.ACTIVITY).status == "pending"
    done.refresh_from_db()
    assert done.status == "done"

    again = admin_client.post("/admin/events/delivery/", {"action": "replay_to_consumer",
                                                           "_selected_action": [done.pk]})
    assert again.status_code == 302
    done.refresh_from_db()
    assert done.status == "done"
    assert Delivery.objects.filter(event=done_row).count() == Delivery.objects.filter(event=missing_row).count()


@pytest.mark.django_db
def test_replay_refuses_a_consumer_that_does_not_take_the_events(admin_client, test_consumers):
    row, delivery = _activity(test_consumers)
    Delivery.objects.filter(pk=delivery.pk).delete()

    response = admin_client.post("/admin/events/outboxevent/", {
        "action": "replay_to_consumer", "_selected_action": [str(row.pk)], "apply": "1", "consumer": "nobody.here"})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Delivery.objects.filter(event=row, consumer=test_consumers.ACTIVITY).exists()

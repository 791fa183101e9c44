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

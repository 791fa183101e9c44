"""Suspicious activity reaches someone: the rules publish event-suspicious-activity, the consumer records an Alert,
the admin acknowledges it, instance admins list them."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.services import product_create
from orders.services import order_place
from payments.consumers import record_alert
from payments.models import Alert, Payment
from payments.services import alert_record, payment_charge_for_order, wallet_create
from tests.factories import ProfileFactory
from tests.inventory.support import client_for
from tests.orders.harness import make_event

pytestmark = pytest.mark.django_db


def suspicious(sent):
    return [s.payload for s in sent.sent if s.signal in ("suspicious_activity", "order_suspicious_activity")]


def test_n_failed_charges_of_one_wallet_within_the_window_are_reported_once(instance, customer, sent, settings):
    settings.PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW = 100  # only the window rule here
    settings.PAYMENTS_SUSPICIOUS_FAILURES_IN_WINDOW = 3
    settings.PAYMENTS_SUSPICIOUS_WINDOW_SECONDS = 600
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="1.50")
    payment_charge_for_order(instance=instance, order_id=1, customer_id=customer.pk, amount="5.00", currency="USD")
    Payment.objects.filter(order_id=1).update(created_at=timezone.now() - timedelta(seconds=601))  # out of window
    for order_id in (2, 3, 4):
        payment_charge_for_order(instance=instance, order_id=order_id, customer_id=customer.pk, amount="0.50",
                                 currency="USD")  # succeeds: not a failure
    for order_id in (5, 6):
        payment_charge_for_order(instance=instance, order_id=order_id, customer_id=customer.pk, amount="5.00",
                                 currency="USD")
    assert suspicious(sent) == []

    payment_charge_for_order(instance=instance, order_id=7, customer_id=customer.pk, amount="5.00", currency="USD")
    payment_charge_for_order(instance=instance, order_id=8, customer_id=customer.pk, amount="5.00", currency="USD")

    assert suspicious(sent) == [{"kind": "payment_failures_in_window", "user_id": customer.pk,
                                 "detail": f"wallet {wallet.pk}: 3 failed charges within 600s (last: order 7)"}]


def test_an_order_far_above_the_customers_median_is_reported(instance, customer, sent, settings):
    settings.ORDERS_SUSPICIOUS_TOTAL_FACTOR = 5
    settings.ORDERS_SUSPICIOUS_MIN_HISTORY = 3
    apple = product_create(instance=instance, sku="APL", name="Apple", price="2.00", stock_on_hand=1000)

    def place(quantity):
        return order_place(instance=instance, customer=customer, currency="USD",
                           lines=[{"product_id": apple.pk, "quantity": quantity}])
    for quantity in (1, 2, 100, 3):  # the 3rd has too little history to judge
        place(quantity)
    place(20)  # 40.00 > 5 x median(2, 4, 6, 200) = 25.00: reported
    place(5)
    assert len(suspicious(sent)) == 1
    assert suspicious(sent)[0]["kind"] == "order_total_above_median"
    assert suspicious(sent)[0]["detail"].startswith("order ")
    assert suspicious(sent)[0]["user_id"] == customer.pk


def test_the_consumer_records_one_alert_per_event(instance, customer):
    event = make_event("event-suspicious-activity", {"kind": "payment_failures_in_window", "detail": "d",
                                                     "user_id": customer.pk}, instance.pk)
    record_alert(event)
    record_alert(event)
    record_alert(make_event("event-suspicious-activity", {"kind": "k", "detail": "", "user_id": None}, None))

    alert = Alert.objects.get()
    assert (alert.instance_id, alert.kind, alert.subject, alert.user_id, alert.details, alert.event_id) == (
        instance.pk, "payment_failures_in_window", f"user:{customer.pk}", customer.pk, "d", event.id)


def test_alert_record_returns_the_new_alert_once_and_none_for_a_repeat(instance, customer):
    event_id = uuid.uuid4()

    first = alert_record(instance=instance, event_id=event_id, kind="k", detail="d", user_id=customer.pk)
    again = alert_record(instance=instance, event_id=event_id, kind="k", detail="other", user_id=None)

    assert first is not None and first.pk == Alert.objects.get().pk
    assert again is None
    assert Alert.objects.get().details == "d"


def alert(instance, **fields):
    return Alert.objects.create(instance=instance, kind="k", details="d", event_id=uuid.uuid4(), **fields)


def test_admin_acknowledges_once(admin_client, admin_user, instance):
    first, second = alert(instance), alert(instance)
    url = reverse("admin:payments_alert_changelist")
    assert admin_client.get(url).status_code == 200
    admin_client.post(url, {"action": "acknowledge", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.acknowledged_by_id == admin_user.pk
    when = first.acknowledged_at
    admin_client.post(url, {"action": "acknowledge", "_selected_action": [first.pk, second.pk]})
    first.refresh_from_db()
    assert first.acknowledged_at == when
    assert Alert.objects.filter(acknowledged_at__isnull=True).count() == 0


def test_instance_admins_list_their_instance_alerts(instance, other_instance):
    mine = alert(instance)
    alert(other_instance)
    admin = client_for(ProfileFactory(instance=instance, role="instance_admin"))
    body = admin.get("/api/v1/alerts/").json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == mine.pk
    customer = client_for(ProfileFactory(instance=instance, role="customer"))
    assert customer.get("/api/v1/alerts/").status_code == 403

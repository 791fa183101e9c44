"""An order's saga drawn from the event log: a real saga run through the outbox and ``delivery_run``."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from console.saga import draw_saga, order_saga_events
from events.choices import DeliveryStatus
from events.models import Delivery
from inventory.services import product_create
from orders.models import Order
from orders.services import order_place
from payments.services import wallet_create
from tests.factories import InstanceFactory, UserFactory
from tests.support.bus import drain_bus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_broker(settings):
    settings.EVENTS_RELAY_ON_COMMIT = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def place(balance: str) -> Order:
    instance, customer = InstanceFactory(slug="acme"), UserFactory()
    wallet_create(instance=instance, user=customer, currency="USD", balance=balance)
    apple = product_create(instance=instance, sku="APL", name="Apple", price="12.50", stock_on_hand=5)
    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 2}])
    drain_bus()
    order.refresh_from_db()
    return order


def shown(svg: str, pattern: str) -> list[str]:
    return re.findall(pattern, svg)


def test_an_approved_order_shows_every_step_and_delivery_of_its_saga():
    order = place("100.00")
    assert order.status == "approved"

    events = order_saga_events(order=order)
    svg = str(draw_saga(events))

    assert [e.name for e in events] == ["event-order-created", "event-product-reserved", "event-payment",
                                        "event-order-approved"]
    assert shown(svg, r'<g class="event (\w+)" data-event="([\w-]+)"') == [
        ("step", "event-order-created"), ("step", "event-product-reserved"), ("step", "event-payment"),
        ("step", "event-order-approved")]
    assert shown(svg, r'data-consumer="([\w.]+)" data-status="(\w+)" data-failures="(\d+)"') == [
        ("inventory.reserve_for_order", "done", "0"), ("payments.charge_for_order", "done", "0"),
        ("orders.apply_payment", "done", "0"), ("inventory.commit_for_order", "done", "0")]
    assert svg.startswith('<svg class="saga-timeline"') and "<script" not in svg and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert len(shown(svg, r'<text class="duration"[^>]*>(\d+(?:\.\d)? m?s)</text>')) == 4


def test_a_canceled_order_shows_the_failure_and_its_compensations():
    order = place("1.00")
    assert (order.status, order.reason) == ("canceled", "payment_failed")

    svg = str(draw_saga(order_saga_events(order=order)))

    assert shown(svg, r'<g class="event (\w+)" data-event="([\w-]+)"') == [
        ("step", "event-order-created"), ("step", "event-product-reserved"), ("failure", "event-payment"),
        ("compensation", "event-order-canceled")]
    assert sorted(shown(svg, r'<g class="delivery status-done compensation" data-consumer="([\w.]+)"')) == [
        "inventory.release_for_order", "payments.refund_for_order"]


def test_retries_and_dead_letters_are_drawn_and_the_order_page_shows_the_picture(admin_client):
    order = place("100.00")
    commit = Delivery.objects.get(consumer="inventory.commit_for_order")
    Delivery.objects.filter(pk=commit.pk).update(status=DeliveryStatus.DEAD, failures=3, done_at=None,
                                                 last_error="ValueError: shelf on fire")

    svg = str(draw_saga(order_saga_events(order=order)))

    dead = re.search(r'<g class="delivery status-dead" data-consumer="inventory.commit_for_order".*?</g>', svg)
    assert dead is not None
    assert dead.group(0).count('<line class="retry"') == 3
    assert '<path class="dead-mark"' in dead.group(0)
    assert "shelf on fire" in dead.group(0) and "3 retries" in dead.group(0)

    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg class="saga-timeline"') == 1
    assert html.count('<tr data-delivery="') == 4
    assert 'name="_save"' not in html


def test_an_order_without_bus_events_says_so():
    order = Order.objects.create(instance=InstanceFactory(), status="pending", currency="USD")
    assert order_saga_events(order=order) == []
    assert "No bus events recorded" in str(draw_saga([]))

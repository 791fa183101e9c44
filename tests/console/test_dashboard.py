"""The dashboard on the admin index: today's orders per status and live refresh tokens per instance, the bus's
dead letters, parked and oldest pending delivery for superusers; every figure links to the list it counts."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import RefreshToken
from console import dashboard
from events.models import Delivery, OutboxEvent
from orders.models import Order
from tests.console.conftest import make_instance_admin, staff_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def order(instance, status, *, days_ago=0):
    created = Order.objects.create(instance=instance, status=status, currency="USD")
    if days_ago:
        Order.objects.filter(pk=created.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return created


def refresh_token(instance, *, revoked=False, expired=False):
    now = timezone.now()
    return RefreshToken.objects.create(
        user=UserFactory(), instance=instance, role="customer", profile_role="customer", family=uuid.uuid4(),
        token_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        expires_at=now - timedelta(minutes=1) if expired else now + timedelta(days=1),
        revoked_at=now if revoked else None)


def delivery(status, *, minutes_ago=0):
    event = OutboxEvent.objects.create(name="order_created", version=1, occurred_at=timezone.now(),
                                       correlation_id="c", payload={})
    created = Delivery.objects.create(event=event, consumer="inventory.reserve", queue="inventory", status=status)
    if minutes_ago:
        Delivery.objects.filter(pk=created.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return created


@pytest.fixture
def activity(two_instances):
    alpha, bravo = two_instances
    orders = {
        "alpha_pending": [order(alpha, "pending"), order(alpha, "pending")],
        "alpha_approved": [order(alpha, "approved")],
        "bravo_canceled": [order(bravo, "canceled")],
        "alpha_yesterday": [order(alpha, "pending", days_ago=1)],
    }
    tokens = {"alpha_live": [refresh_token(alpha), refresh_token(alpha)], "bravo_live": [refresh_token(bravo)]}
    refresh_token(alpha, revoked=True)
    refresh_token(alpha, expired=True)
    deliveries = {"dead": delivery("dead"), "parked": [delivery("parked"), delivery("parked")],
                  "pending": delivery("pending", minutes_ago=10), "done": delivery("done", minutes_ago=60)}
    return {"orders": orders, "tokens": tokens, "deliveries": deliveries}


def figures(row) -> dict[str, int | str]:
    return {f.label: f.value for f in row.orders_today} | {"live": row.live_refresh_tokens.value}


def test_a_superuser_sees_every_busy_instance_and_the_bus(admin_user, activity, two_instances):
    board = dashboard.dashboard_for(user=admin_user)

    assert [row.instance.slug for row in board.rows] == ["alpha", "bravo"]  # the busiest first
    assert figures(board.rows[0]) == {"pending": 2, "approved": 1, "canceled": 0, "live": 2}
    assert figures(board.rows[1]) == {"pending": 0, "approved": 0, "canceled": 1, "live": 1}
    assert [(f.label, f.value) for f in board.bus] == [
        ("dead letters", 1), ("parked deliveries", 2), ("oldest pending delivery", "10 min")]
    assert board.more_instances == 0


def test_each_figure_links_to_the_list_of_exactly_what_it_counts(admin_client, admin_user, activity):
    board = dashboard.dashboard_for(user=admin_user)
    alpha = board.rows[0]

    def listed(url):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        return sorted(obj.pk for obj in response.context["cl"].result_list)

    pending = next(f for f in alpha.orders_today if f.label == "pending")
    assert listed(pending.url) == sorted(o.pk for o in activity["orders"]["alpha_pending"])
    assert listed(alpha.live_refresh_tokens.url) == sorted(t.pk for t in activity["tokens"]["alpha_live"])
    dead, parked, oldest = board.bus
    assert listed(dead.url) == [activity["deliveries"]["dead"].pk]
    assert listed(parked.url) == sorted(d.pk for d in activity["deliveries"]["parked"])
    assert listed(oldest.url) == [activity["deliveries"]["pending"].pk]


def test_the_index_shows_the_figures_with_their_links(admin_client, activity):
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="console-dashboard"' in html
    row = re.search(r'<tr class="instance" data-instance="alpha">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'data-figure="([^"]+)" href="[^"]+"[^>]*>(\d+)</a>', row) == [
        ("pending", "2"), ("approved", "1"), ("canceled", "0"), ("live refresh tokens", "2")]
    assert re.search(r'data-figure="dead letters" href="/admin/events/delivery/\?status__exact=dead">1</a>', html)


def test_an_instance_admin_sees_their_instance_only_and_no_bus(two_instances, activity):
    alpha, _ = two_instances
    user = make_instance_admin(alpha)

    board = dashboard.dashboard_for(user=user)
    assert [row.instance.slug for row in board.rows] == ["alpha"]
    assert figures(board.rows[0]) == {"pending": 2, "approved": 1, "canceled": 0, "live": 2}
    assert board.bus == []
    html = staff_client(user).get(reverse("admin:index")).content.decode()
    assert 'data-instance="alpha"' in html and 'data-instance="bravo"' not in html
    assert "dead letters" not in html


def test_an_instance_admin_whose_instance_is_quiet_still_sees_its_row(two_instances):
    alpha, _ = two_instances
    board = dashboard.dashboard_for(user=make_instance_admin(alpha))
    assert [(row.instance.slug, figures(row)) for row in board.rows] == [
        ("alpha", {"pending": 0, "approved": 0, "canceled": 0, "live": 0})]


def test_a_superuser_sees_at_most_the_busiest_instances(admin_user, activity, monkeypatch):
    monkeypatch.setattr(dashboard, "MAX_INSTANCES", 1)
    board = dashboard.dashboard_for(user=admin_user)
    assert [row.instance.slug for row in board.rows] == ["alpha"]
    assert board.more_instances == 1


def test_staff_who_administer_nothing_get_no_dashboard(two_instances, activity):
    html = staff_client(UserFactory(is_staff=True)).get(reverse("admin:index")).content.decode()
    assert 'id="console-dashboard"' not in html


def test_the_index_costs_a_fixed_number_of_queries(admin_client, activity, two_instances,
                                                   django_assert_max_num_queries):
    alpha, bravo = two_instances
    for _ in range(5):
        order(alpha, "approved")
        order(bravo, "pending")
    with django_assert_max_num_queries(10):
        admin_client.get(reverse("admin:index"))

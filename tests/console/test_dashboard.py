"""The dashboard on the admin index: per instance today's orders per status, orders needing attention, the saga's
dead letters, open alerts and live refresh tokens (and, for superusers, parked and oldest pending deliveries);
the bus's dead letters, parked and oldest pending delivery for superusers; every figure links to the list it
counts, for a superuser and for an instance admin alike."""

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
from orders.models import DeadLetter, Order
from payments.models import Alert
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


def delivery(status, *, minutes_ago=0, instance=None):
    event = OutboxEvent.objects.create(name="order_created", version=1, occurred_at=timezone.now(),
                                       correlation_id="c", payload={},
                                       instance_id=instance.pk if instance else None)
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


def alert(instance, *, acknowledged=False):
    return Alert.objects.create(instance=instance, kind="many_failed_logins", event_id=uuid.uuid4(),
                                acknowledged_at=timezone.now() if acknowledged else None)


def dead_letter(order_row):
    return DeadLetter.objects.create(delivery_id=DeadLetter.objects.count() + 1000, order=order_row,
                                     event_name="order_created", consumer="inventory.reserve", action="canceled")


@pytest.fixture
def trouble(two_instances):
    """What needs a look, in both instances: flagged orders (one of them old), saga dead letters, open alerts,
    parked and pending deliveries of each instance's events."""
    alpha, bravo = two_instances
    flagged = order(alpha, "pending", days_ago=3)
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True)
    Order.objects.create(instance=bravo, status="pending", currency="USD", needs_attention=True)
    canceled = order(alpha, "canceled", days_ago=2)
    letters = [dead_letter(canceled), dead_letter(order(bravo, "canceled"))]
    alerts = {"alpha": [alert(alpha), alert(alpha)], "bravo": [alert(bravo)]}
    alert(alpha, acknowledged=True)
    deliveries = {"alpha_parked": delivery("parked", instance=alpha),
                  "alpha_pending": [delivery("pending", minutes_ago=30, instance=alpha),
                                    delivery("pending", minutes_ago=5, instance=alpha)],
                  "bravo_parked": delivery("parked", instance=bravo)}
    return {"flagged": flagged, "letters": letters, "alerts": alerts, "deliveries": deliveries}


def attention(row) -> dict[str, int | str]:
    return {f.label: f.value for f in row.attention}


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
    assert re.findall(r'data-figure="([^"]+)" href="[^"]+"[^>]*>(\d+|none)</a>', row) == [
        ("pending", "2"), ("approved", "1"), ("canceled", "0"), ("needing attention", "0"), ("dead letters", "0"),
        ("open alerts", "0"), ("parked deliveries", "0"), ("oldest pending delivery", "none"),
        ("live refresh tokens", "2")]
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
    assert 'id="console-bus"' not in html and "parked deliveries" not in html and "/admin/events/" not in html


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
    with django_assert_max_num_queries(12):  # session, user, 9 aggregates and lookups, the admin's own
        admin_client.get(reverse("admin:index"))


def test_a_superuser_sees_what_needs_a_look_per_instance(admin_user, two_instances, trouble):
    board = dashboard.dashboard_for(user=admin_user)

    rows = {row.instance.slug: row for row in board.rows}
    assert attention(rows["alpha"]) == {"needing attention": 1, "dead letters": 1, "open alerts": 2,
                                        "parked deliveries": 1, "oldest pending delivery": "30 min"}
    assert attention(rows["bravo"]) == {"needing attention": 1, "dead letters": 1, "open alerts": 1,
                                        "parked deliveries": 1, "oldest pending delivery": "none"}
    assert board.attention_labels == list(attention(rows["alpha"]))


def test_an_instance_admin_sees_what_needs_a_look_in_their_instance_without_the_bus(two_instances, trouble):
    alpha, _ = two_instances
    board = dashboard.dashboard_for(user=make_instance_admin(alpha))

    assert [(row.instance.slug, attention(row)) for row in board.rows] == [
        ("alpha", {"needing attention": 1, "dead letters": 1, "open alerts": 2})]


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def test_each_attention_figure_links_to_exactly_what_it_counts_for_a_superuser(admin_client, admin_user, trouble):
    rows = {row.instance.slug: row for row in dashboard.dashboard_for(user=admin_user).rows}
    links = {f.label: f.url for f in rows["alpha"].attention}

    assert listed(admin_client, links["needing attention"]) == [trouble["flagged"].pk]
    assert listed(admin_client, links["dead letters"]) == [trouble["letters"][0].pk]
    assert listed(admin_client, links["open alerts"]) == sorted(a.pk for a in trouble["alerts"]["alpha"])
    assert listed(admin_client, links["parked deliveries"]) == [trouble["deliveries"]["alpha_parked"].pk]
    assert listed(admin_client, links["oldest pending delivery"]) == sorted(
        d.pk for d in trouble["deliveries"]["alpha_pending"])


def test_each_figure_links_to_exactly_what_it_counts_for_an_instance_admin(two_instances, activity, trouble):
    alpha, _ = two_instances
    user = make_instance_admin(alpha)
    client = staff_client(user)
    (row,) = dashboard.dashboard_for(user=user).rows
    links = {f.label: f.url for f in row.attention} | {f.label: f.url for f in row.orders_today}

    assert listed(client, links["pending"]) == sorted(o.pk for o in activity["orders"]["alpha_pending"])
    assert listed(client, links["needing attention"]) == [trouble["flagged"].pk]
    assert listed(client, links["dead letters"]) == [trouble["letters"][0].pk]
    assert listed(client, links["open alerts"]) == sorted(a.pk for a in trouble["alerts"]["alpha"])
    assert listed(client, row.live_refresh_tokens.url) == sorted(t.pk for t in activity["tokens"]["alpha_live"])


def test_an_instance_with_only_open_alerts_is_shown_to_a_superuser(admin_user, two_instances):
    _, bravo = two_instances
    alert(bravo)
    board = dashboard.dashboard_for(user=admin_user)
    assert [(row.instance.slug, attention(row)["open alerts"]) for row in board.rows] == [("bravo", 1)]

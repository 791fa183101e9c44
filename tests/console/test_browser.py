"""The console in a real headless chromium (skipped, saying why, where chromium or playwright is missing)."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.models import User
from audit.choices import AuditAction
from audit.services import audit_record
from authz.roles import LATTICE
from orders.models import Order
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory
from tests.support.browser import admin_login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root@example.com", DEFAULT_PASSWORD, name="Root")


def test_a_superuser_logs_in_and_sees_the_dashboard(browser_page, superuser):
    acme = InstanceFactory(slug="acme")
    pending = [Order.objects.create(instance=acme, status="pending", currency="USD") for _ in range(3)]
    Order.objects.create(instance=acme, status="approved", currency="USD")
    admin_login(browser_page, email="root@example.com", password=DEFAULT_PASSWORD)

    assert browser_page.locator("#site-name").inner_text() == "saaskit console"
    assert browser_page.locator("h1").first.inner_text() == "Console"
    assert browser_page.locator("a[href='/admin/audit/auditentry/']").count() >= 1
    row = browser_page.locator("#console-dashboard tr[data-instance=acme]")
    assert row.locator("a[data-figure=pending]").inner_text() == "3"
    assert row.locator("a[data-figure=approved]").inner_text() == "1"
    assert browser_page.locator("#console-bus a[data-figure='dead letters']").is_visible()
    assert row.locator("a[data-figure='needing attention']").inner_text() == "0"
    assert screenshot(browser_page, "dashboard").stat().st_size > 10_000

    row.locator("a[data-figure=pending]").click()
    browser_page.wait_for_url("**/admin/orders/order/**")
    shown = browser_page.locator("#result_list tbody tr th a").all_inner_texts()
    assert sorted(shown) == sorted(str(o.pk) for o in pending)


def test_a_superuser_opens_the_audit_list_and_finds_it_read_only(browser_page, superuser):
    instance = InstanceFactory(slug="acme")
    with transaction.atomic():
        entry = audit_record(action=AuditAction.RESTOCK, actor=superuser, instance=instance,
                             target=("inventory.product", 42), before={"stock_on_hand": 1},
                             after={"stock_on_hand": 9})
    admin_login(browser_page, email="root@example.com", password=DEFAULT_PASSWORD)

    browser_page.goto("/admin/audit/auditentry/")
    rows = browser_page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "restock" in rows.first.inner_text() and "acme" in rows.first.inner_text()
    assert browser_page.locator(".object-tools a.addlink").count() == 0
    browser_page.goto(f"/admin/audit/auditentry/{entry.pk}/change/")
    assert browser_page.locator("input[name=_save]").count() == 0
    assert "stock_on_hand" in browser_page.locator("#content").inner_text()
    screenshot(browser_page, "audit-entry")


def test_a_superuser_opens_the_roles_lattice_from_the_index(browser_page, superuser):
    ProfileFactory(instance=InstanceFactory(slug="acme"), role="clerk")
    admin_login(browser_page, email="root@example.com", password=DEFAULT_PASSWORD)

    browser_page.click("#console-pages a:text('Roles')")
    browser_page.wait_for_url("**/admin/roles/")
    svg = browser_page.locator("svg.lattice")
    assert svg.is_visible()
    assert sorted(browser_page.locator("svg.lattice g.role").evaluate_all(
        "nodes => nodes.map(n => n.dataset.role)")) == sorted(LATTICE.roles)
    dashed = browser_page.locator("svg.lattice line.switch").evaluate_all(
        "lines => lines.map(l => getComputedStyle(l).strokeDasharray)")
    assert dashed and all(value not in ("", "none") for value in dashed)
    solid = browser_page.locator("svg.lattice line.implies").evaluate_all(
        "lines => lines.map(l => getComputedStyle(l).strokeDasharray)")
    assert solid and all(value == "none" for value in solid)
    screenshot(browser_page, "roles")

    browser_page.click("svg.lattice g[data-role=clerk] a")
    browser_page.wait_for_url("**/admin/accounts/profile/?role=clerk")
    assert browser_page.locator("#result_list tbody tr").count() == 1

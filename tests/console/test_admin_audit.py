"""The audit list in the admin: read-only for everyone, filterable and searchable, scoped per instance."""

from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.urls import reverse

from audit.choices import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from tests.console.conftest import make_instance_admin, staff_client
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:audit_auditentry_changelist"


def record(action, *, actor=None, instance=None, target=("accounts.profile", 1), before=None, after=None):
    with transaction.atomic():
        return audit_record(action=action, actor=actor, instance=instance, target=target, before=before,
                            after=after)


def listed(response) -> list[int]:
    return sorted(entry.pk for entry in response.context["cl"].result_list)


@pytest.fixture
def entries(two_instances):
    alpha, bravo = two_instances
    alice, bob = UserFactory(email="alice@example.com"), UserFactory(email="bob@example.com")
    return {
        "alpha_role": record(AuditAction.ROLE_CHANGE, actor=alice, instance=alpha, target=("accounts.profile", 11),
                             before={"role": "clerk"}, after={"role": "accountant"}),
        "alpha_restock": record(AuditAction.RESTOCK, actor=bob, instance=alpha, target=("inventory.product", 12)),
        "bravo_lock": record(AuditAction.LOCK, actor=alice, instance=bravo, target=("accounts.user", 13)),
        "platform": record(AuditAction.TOKEN_REVOCATION, actor=None, instance=None, target=("accounts.user", 14)),
    }


def test_a_superuser_sees_every_entry(admin_client, entries):
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert listed(response) == sorted(e.pk for e in entries.values())


def test_the_list_filters_by_action_instance_actor_and_time(admin_client, entries, two_instances):
    alpha, _ = two_instances
    url = reverse(CHANGELIST)
    alice_id = entries["alpha_role"].actor_id

    assert listed(admin_client.get(url, {"action__exact": "restock"})) == [entries["alpha_restock"].pk]
    assert listed(admin_client.get(url, {"instance": alpha.pk})) == sorted(
        [entries["alpha_role"].pk, entries["alpha_restock"].pk])
    assert listed(admin_client.get(url, {"actor": alice_id})) == sorted(
        [entries["alpha_role"].pk, entries["bravo_lock"].pk])
    response = admin_client.get(url)
    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert titles == ["action", "created at", "instance", "actor"]
    instance_choices = [c["display"] for c in response.context["cl"].filter_specs[2].choices(response.context["cl"])]
    assert instance_choices == ["All", "alpha", "bravo"]


def test_the_time_filter_keeps_todays_entries(admin_client, entries):
    AuditEntry.objects.filter(pk=entries["platform"].pk).update(created_at="2020-01-01T00:00:00Z")
    response = admin_client.get(reverse(CHANGELIST), {"created_at__gte": "2025-01-01T00:00:00+00:00"})
    assert entries["platform"].pk not in listed(response)
    assert len(listed(response)) == 3


def test_the_list_searches_actor_email_and_instance_slug(admin_client, entries):
    url = reverse(CHANGELIST)
    assert listed(admin_client.get(url, {"q": "bob@"})) == [entries["alpha_restock"].pk]
    assert listed(admin_client.get(url, {"q": "bravo"})) == [entries["bravo_lock"].pk]


def test_nobody_can_add_change_or_delete_entries(admin_client, entries):
    entry = entries["alpha_role"]
    before = list(AuditEntry.objects.order_by("pk").values())

    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    change_url = reverse("admin:audit_auditentry_change", args=[entry.pk])
    page = admin_client.get(change_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and 'name="_continue"' not in html and 'name="_addanother"' not in html
    changes = re.search(r'<tr data-field="role"><th>role</th><td>(.*?)</td><td>(.*?)</td></tr>', html)
    assert changes.groups() == ("&quot;clerk&quot;", "&quot;accountant&quot;")
    assert admin_client.post(change_url, {"action": "lock", "actor_email": "x@example.com"}).status_code == 403
    assert admin_client.get(reverse("admin:audit_auditentry_delete", args=[entry.pk])).status_code == 403
    assert admin_client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]),
                             {"post": "yes"}).status_code == 403
    bulk = admin_client.post(reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [entry.pk],
                                                   "post": "yes"})
    assert bulk.status_code in {200, 302}
    changelist = admin_client.get(reverse(CHANGELIST))
    assert changelist.context["action_form"] is None
    assert list(AuditEntry.objects.order_by("pk").values()) == before


def test_an_instance_admin_sees_only_their_instances_entries(two_instances, entries):
    alpha, bravo = two_instances
    client = staff_client(make_instance_admin(alpha))

    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert listed(response) == sorted([entries["alpha_role"].pk, entries["alpha_restock"].pk])
    assert listed(client.get(reverse(CHANGELIST), {"instance": bravo.pk})) == []
    assert listed(client.get(reverse(CHANGELIST), {"q": "bravo"})) == []
    instance_choices = [c["display"] for c in response.context["cl"].filter_specs[2].choices(response.context["cl"])]
    assert instance_choices == ["All", "alpha"]

    other = client.get(reverse("admin:audit_auditentry_change", args=[entries["bravo_lock"].pk]))
    assert other.status_code == 404  # the same as a missing entry (console.admin_base)
    platform = client.get(reverse("admin:audit_auditentry_change", args=[entries["platform"].pk]))
    assert platform.status_code == 404
    own = client.get(reverse("admin:audit_auditentry_change", args=[entries["alpha_role"].pk]))
    assert own.status_code == 200 and 'name="_save"' not in own.content.decode()


def test_the_index_shows_the_audit_log_to_an_instance_admin(two_instances):
    alpha, _ = two_instances
    response = staff_client(make_instance_admin(alpha)).get(reverse("admin:index"))
    assert reverse(CHANGELIST) in response.content.decode()


def test_staff_who_administer_no_instance_see_no_audit_log(two_instances, entries):
    alpha, _ = two_instances
    clerk = UserFactory(is_staff=True)
    ProfileFactory(user=clerk, instance=alpha, role="clerk")
    client = staff_client(clerk)

    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert reverse(CHANGELIST) not in client.get(reverse("admin:index")).content.decode()


def test_an_admin_of_a_deactivated_instance_sees_nothing(two_instances, entries):
    alpha, _ = two_instances
    client = staff_client(make_instance_admin(alpha))
    alpha.is_active = False
    alpha.save()
    assert client.get(reverse(CHANGELIST)).status_code == 403


def test_the_list_takes_a_fixed_number_of_queries(admin_client, entries, django_assert_max_num_queries):
    for _ in range(20):
        record(AuditAction.RESTOCK, actor=entries["alpha_role"].actor, instance=None)
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(CHANGELIST))
    assert len(listed(response)) == 24


def test_the_changes_table_escapes_what_it_shows(admin_client):
    entry = record(AuditAction.GROUP_CHANGE, before=None, after={"name": "<b>ops</b>"})
    html = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])).content.decode()
    assert '<tr data-field="name"><th>name</th><td>-</td><td>&quot;&lt;b&gt;ops&lt;/b&gt;&quot;</td></tr>' in html
    assert "<b>ops</b>" not in html

"""The Roles page: the lattice from the code as server-rendered SVG, counts of profiles per role linking to the
filtered profile list, scoped to the instances the caller administers."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from authz.roles import LATTICE
from tests.console.conftest import make_instance_admin, staff_client
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES_URL = "/admin/roles/"
LINE = re.compile(r'<line class="edge (\w+)" data-source="(\w+)" data-target="(\w+)"([^>]*)>')


@pytest.fixture
def members(two_instances):
    alpha, bravo = two_instances
    clerks = [ProfileFactory(instance=alpha, role="clerk") for _ in range(2)]
    accountant = ProfileFactory(instance=bravo, role="accountant")
    operator = ProfileFactory(instance=None, role="super_admin")
    return {"clerks": clerks, "accountant": accountant, "operator": operator}


def counts_in(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-role="(\w+)">.*?<td><a href="[^"]+">(\d+)</a></td>', html, re.S))


def test_the_page_draws_every_role_and_every_edge_of_the_code(admin_client, members):
    assert reverse("admin:roles") == ROLES_URL
    response = admin_client.get(ROLES_URL)
    assert response.status_code == 200
    html = response.content.decode()

    assert '<svg class="lattice"' in html
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == []  # nothing from another host
    assert sorted(re.findall(r'<g class="role[^"]*" data-role="(\w+)"', html)) == sorted(LATTICE.roles)
    lines = LINE.findall(html)
    expected = {(n, t, "implies") for n, r in LATTICE.roles.items() for t in r.implies} | {
        (n, t, "switch") for n, r in LATTICE.roles.items() for t in r.switches_to}
    assert {(source, target, kind) for kind, source, target, _ in lines} == expected
    assert len(lines) == len(expected)
    for kind, _source, _target, attrs in lines:
        assert ("stroke-dasharray" in attrs) is (kind == "switch")


def test_each_role_shows_its_profiles_linking_to_the_filtered_list(admin_client, members):
    html = admin_client.get(ROLES_URL).content.decode()

    assert counts_in(html) == {"super_admin": "1", "instance_admin": "0", "clerk": "2", "accountant": "1",
                               "customer": "0", "anonymous": "0"}
    assert 'href="/admin/accounts/profile/?role=clerk"' in html
    assert "2 profiles" in html and "1 profile<" in html


def test_the_filtered_profile_list_holds_exactly_that_roles_profiles(admin_client, members):
    response = admin_client.get("/admin/accounts/profile/", {"role": "clerk"})
    assert response.status_code == 200
    assert sorted(p.pk for p in response.context["cl"].result_list) == sorted(p.pk for p in members["clerks"])


def test_an_instance_admin_counts_only_their_instances_profiles(two_instances, members):
    alpha, _ = two_instances
    client = staff_client(make_instance_admin(alpha))

    html = client.get(ROLES_URL).content.decode()
    assert counts_in(html) == {"super_admin": "0", "instance_admin": "1", "clerk": "2", "accountant": "0",
                               "customer": "0", "anonymous": "0"}
    accountants = client.get("/admin/accounts/profile/", {"role": "accountant"})
    assert list(accountants.context["cl"].result_list) == []


def test_the_index_links_the_roles_page(admin_client):
    assert f'href="{ROLES_URL}"' in admin_client.get(reverse("admin:index")).content.decode()


def test_staff_who_administer_nothing_neither_see_nor_open_it(two_instances):
    alpha, _ = two_instances
    clerk = UserFactory(is_staff=True)
    ProfileFactory(user=clerk, instance=alpha, role="clerk")
    client = staff_client(clerk)

    assert client.get(ROLES_URL).status_code == 403
    assert ROLES_URL not in client.get(reverse("admin:index")).content.decode()


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(ROLES_URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_page_costs_a_fixed_number_of_queries(admin_client, members, django_assert_max_num_queries):
    for _ in range(10):
        ProfileFactory(role="customer")
    with django_assert_max_num_queries(4):
        admin_client.get(ROLES_URL)

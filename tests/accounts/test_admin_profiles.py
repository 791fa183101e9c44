"""Profile rows edited in the admin (members inline on an instance, profiles inline on a user) respect the
profile constraints with a form error, never an IntegrityError: one profile per user and instance, at most
one global profile per user, also when the page is stale or one submission repeats a row."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Profile
from tests.factories import InstanceFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def form_data(response) -> dict:
    """The POST body a browser sends back for an admin change form, from the rendered forms."""
    data: dict = {}

    def add(form) -> None:
        for field in form:
            value = field.value()
            if isinstance(value, bool):
                if value:
                    data[field.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[field.html_name] = [str(v) for v in value]
            elif value is not None:
                data[field.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def profile_errors(response) -> tuple[list, list]:
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.model is Profile)
    return [e for e in formset.errors if e], list(formset.non_form_errors())


def add_rows(data: dict, prefix: str, rows: list[dict]) -> None:
    start = int(data[f"{prefix}-TOTAL_FORMS"])
    for offset, row in enumerate(rows):
        data.update({f"{prefix}-{start + offset}-{key}": value for key, value in row.items()})
    data[f"{prefix}-TOTAL_FORMS"] = str(start + len(rows))


def rows() -> list[tuple]:
    return sorted(Profile.objects.values_list("user_id", "instance_id", "role"), key=str)


def test_a_second_global_profile_for_a_user_is_a_form_error(admin_client):
    operator = ProfileFactory(instance=None, role="super_admin")
    url = reverse("admin:accounts_user_change", args=[operator.user_id])
    data = form_data(admin_client.get(url))
    add_rows(data, "profiles", [{"user": str(operator.user_id), "instance": "", "role": "super_admin"}])
    before = rows()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert profile_errors(response) == ([{"__all__": [f"{operator.user.email} already has a global profile."]}], [])
    assert rows() == before


def test_a_second_profile_in_the_same_instance_from_a_stale_user_page_is_a_form_error(admin_client):
    user = UserFactory()
    url = reverse("admin:accounts_user_change", args=[user.pk])
    stale = form_data(admin_client.get(url))  # rendered before the profile below existed
    existing = ProfileFactory(user=user, role="clerk")
    add_rows(stale, "profiles", [{"user": str(user.pk), "instance": str(existing.instance_id), "role": "customer"}])
    before = rows()

    response = admin_client.post(url, stale)

    assert response.status_code == 200
    assert profile_errors(response) == (
        [{"__all__": [f"{user.email} already has a profile in {existing.instance.slug}."]}], [])
    assert rows() == before


def test_the_same_member_twice_in_one_submission_is_a_formset_error(admin_client):
    instance = InstanceFactory()
    user = UserFactory()
    url = reverse("admin:accounts_instance_change", args=[instance.pk])
    data = form_data(admin_client.get(url))
    add_rows(data, "profiles", [{"user": str(user.pk), "role": "clerk"}, {"user": str(user.pk), "role": "customer"}])

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert profile_errors(response) == (
        [{"__all__": ["Please correct the duplicate values below."]}], ["Please correct the duplicate data for user."])
    assert not Profile.objects.filter(instance=instance).exists()


def test_two_global_profiles_in_one_submission_are_a_formset_error(admin_client):
    user = UserFactory()
    url = reverse("admin:accounts_user_change", args=[user.pk])
    data = form_data(admin_client.get(url))
    add_rows(data, "profiles", [{"user": str(user.pk), "instance": "", "role": "super_admin"},
                                {"user": str(user.pk), "instance": "", "role": "super_admin"}])

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert profile_errors(response) == (
        [], ["A user holds one profile per instance and at most one global profile."])
    assert not Profile.objects.filter(user=user).exists()


def test_adding_a_member_who_joined_meanwhile_from_a_stale_instance_page_is_a_form_error(admin_client):
    instance = InstanceFactory()
    user = UserFactory()
    url = reverse("admin:accounts_instance_change", args=[instance.pk])
    stale = form_data(admin_client.get(url))
    ProfileFactory(user=user, instance=instance, role="customer")
    add_rows(stale, "profiles", [{"user": str(user.pk), "role": "clerk"}])

    response = admin_client.post(url, stale)

    assert response.status_code == 200
    assert profile_errors(response) == ([{"__all__": [f"{user.email} already has a profile in {instance.slug}."]}], [])
    assert rows() == [(user.pk, instance.pk, "customer")]


def test_a_new_instance_with_two_members_is_created_with_both(admin_client):
    first, second = UserFactory(), UserFactory()
    url = reverse("admin:accounts_instance_add")
    data = form_data(admin_client.get(url))
    data.update({"slug": "initech", "name": "Initech", "is_active": "on"})
    add_rows(data, "profiles", [{"user": str(first.pk), "role": "instance_admin"},
                                {"user": str(second.pk), "role": "customer"}])

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert sorted(Profile.objects.filter(instance__slug="initech").values_list("user_id", "role")) == [
        (first.pk, "instance_admin"), (second.pk, "customer")]


def test_moving_a_profile_to_an_instance_where_the_user_has_none_is_allowed(admin_client):
    profile = ProfileFactory(role="clerk")
    target = InstanceFactory()
    url = reverse("admin:accounts_user_change", args=[profile.user_id])
    page = admin_client.get(url)
    data = form_data(page)
    data["profiles-0-instance"] = str(target.pk)

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert rows() == [(profile.user_id, target.pk, "clerk")]

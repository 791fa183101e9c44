import pytest
from rest_framework.test import APIRequestFactory

from authz.context import ActingContext
from authz.permissions import CanActForInstance, CanActIn
from authz.roles import UnknownRole


def request_with(role: str | None):
    request = APIRequestFactory().get("/")
    request.auth = None if role is None else ActingContext(
        user_id=1, instance_id=3, instance_slug="acme", role=role, profile_role=role)
    return request


class View:
    kwargs = {"slug": "acme"}


@pytest.mark.parametrize(("role", "allowed"), [
    ("instance_admin", True), ("clerk", True), ("accountant", False), ("customer", False), (None, False),
])
def test_can_act_in_permission_follows_the_lattice(role, allowed):
    permission = CanActIn("clerk")()

    assert permission.has_permission(request_with(role), View()) is allowed


def test_can_act_in_with_an_unknown_role_fails_at_definition_time():
    with pytest.raises(UnknownRole):
        CanActIn("clerkk")


@pytest.mark.parametrize(("slug", "allowed"), [("acme", True), ("globex", False)])
def test_can_act_for_instance_reads_the_url_slug(slug, allowed):
    view = View()
    view.kwargs = {"slug": slug}

    assert CanActForInstance()().has_permission(request_with("customer"), view) is allowed

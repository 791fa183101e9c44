import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from authz.models import Group, GroupMembership, Policy, Resource

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Policy, Group, GroupMembership, Resource])
def test_admin_is_read_only(model):
    model_admin = site._registry[model]
    request = RequestFactory().get("/")

    assert (model_admin.has_add_permission(request), model_admin.has_change_permission(request),
            model_admin.has_delete_permission(request)) == (False, False, False)

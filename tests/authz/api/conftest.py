import pytest
from rest_framework.test import APIClient

from accounts.api import base
from tests.factories import ProfileFactory, context_for


@pytest.fixture(autouse=True)
def _empty_membership_cache():
    base._membership_cache.clear()
    yield
    base._membership_cache.clear()


def client_for(profile):
    client = APIClient()
    client.force_authenticate(user=profile.user, token=context_for(profile))
    return client


@pytest.fixture
def admin(admin_profile):
    return client_for(admin_profile)


@pytest.fixture
def foreign_admin(other_instance):
    return client_for(ProfileFactory(instance=other_instance, role="instance_admin"))


@pytest.fixture
def clerk(instance):
    return client_for(ProfileFactory(instance=instance, role="clerk"))


@pytest.fixture
def customer(instance):
    return client_for(ProfileFactory(instance=instance, role="customer"))

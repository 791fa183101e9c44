import pytest
from rest_framework.test import APIClient

from tests.factories import ProfileFactory, context_for


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

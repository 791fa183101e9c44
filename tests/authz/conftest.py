from __future__ import annotations

import pytest

from authz import changefeed
from tests.factories import InstanceFactory, ProfileFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories set passwords; authz tests never log in, so a cheap hasher keeps them fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_default_cache():
    """The process-wide cache outlives a test's rolled-back data: start every test with it empty."""
    from authz.cache import default_cache

    default_cache().clear()
    yield
    default_cache().clear()


@pytest.fixture
def instance():
    return InstanceFactory()


@pytest.fixture
def other_instance():
    return InstanceFactory()


@pytest.fixture
def member(instance):
    """A customer of ``instance`` (the customer role allows nothing on orders, so policies decide)."""
    return ProfileFactory(instance=instance, role="customer").user


@pytest.fixture
def admin_profile(instance):
    return ProfileFactory(instance=instance, role="instance_admin")


@pytest.fixture
def updates():
    """Collects policy_updated signals sent during the test."""
    from authz.signals import policy_updated

    seen: list[dict] = []

    def receiver(sender, instance, payload, **kwargs):
        seen.append({"instance": instance.pk, **payload})

    policy_updated.connect(receiver, weak=False)
    yield seen
    policy_updated.disconnect(receiver)


@pytest.fixture
def feed():
    """The change feed stream, emptied before and after the test."""
    client = changefeed.client()
    client.delete(changefeed.STREAM)
    yield client
    client.delete(changefeed.STREAM)

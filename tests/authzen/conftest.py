from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.api import base
from authzen import authentication, index, selectors, services
from tests.factories import InstanceFactory, ProfileFactory, context_for


@pytest.fixture(autouse=True)
def _fresh_caches(settings):
    """Cheap password hashing, and the per-process caches emptied around every test."""
    from authz.cache import default_cache

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for clear in (authentication.forget_cached_keys, selectors.subject_cache_clear, default_cache().clear,
                  base._membership_cache.clear, index.index_clear):
        clear()
    yield
    for clear in (authentication.forget_cached_keys, selectors.subject_cache_clear, default_cache().clear,
                  base._membership_cache.clear, index.index_clear):
        clear()


def client_for(profile):
    client = APIClient()
    client.force_authenticate(user=profile.user, token=context_for(profile))
    return client


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def instance():
    return InstanceFactory(slug="acme")


@pytest.fixture
def other_instance():
    return InstanceFactory(slug="globex")


@pytest.fixture
def admin_profile(instance):
    return ProfileFactory(instance=instance, role="instance_admin")


@pytest.fixture
def admin(admin_profile):
    return client_for(admin_profile)


@pytest.fixture
def service_key(instance):
    _, _, key = services.service_client_create(instance=instance, name="gateway", role="customer")
    return key


@pytest.fixture
def pep(service_key):
    return key_client(service_key)


@pytest.fixture
def synced():
    """A running authz watcher caught up with an empty change feed: the per-process caches (keys, subject names,
    the authz cache) answer from memory and hear the changes this test commits (wrap them in
    ``django_capture_on_commit_callbacks(execute=True)``, then ``applied(before)``)."""
    import time

    from authz import changefeed
    from authz.cache import watcher
    from tests.support.waiting import wait_until

    changefeed.client().delete(changefeed.STREAM)
    watcher.stop()
    watcher.ensure_started()
    wait_until(lambda: time.monotonic() - watcher.synced_at < 0.5, timeout=10)
    yield watcher
    watcher.stop()
    changefeed.client().delete(changefeed.STREAM)


def applied(before: int) -> None:
    """Wait until the watcher applied a change after ``before`` (its ``applied`` count)."""
    from authz.cache import watcher
    from tests.support.waiting import wait_until

    wait_until(lambda: watcher.applied > before, timeout=10)

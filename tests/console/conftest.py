from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Instance, User
from tests.factories import InstanceFactory, ProfileFactory, UserFactory
from tests.support.browser import browser, browser_page, module_browser  # noqa: F401  (browser test fixtures)


def staff_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_instance_admin(instance: Instance, *, email: str | None = None) -> User:
    """A staff user whose profile in ``instance`` is instance_admin (no per-model permissions)."""
    user = UserFactory(is_staff=True, **({"email": email} if email else {}))
    ProfileFactory(user=user, instance=instance, role="instance_admin")
    return user


@pytest.fixture
def two_instances() -> tuple[Instance, Instance]:
    return InstanceFactory(slug="alpha"), InstanceFactory(slug="bravo")

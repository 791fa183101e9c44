"""Fixtures shared by the saga apps' tests (inventory, payments, orders); each of their conftests imports them."""

from collections.abc import Iterator

import pytest

from accounts.models import Instance, User
from tests.factories import InstanceFactory, UserFactory
from tests.inventory.support import SignalRecorder, recording


@pytest.fixture
def instance(db) -> Instance:
    return InstanceFactory()


@pytest.fixture
def other_instance(db) -> Instance:
    return InstanceFactory()


@pytest.fixture
def customer(db) -> User:
    return UserFactory()


@pytest.fixture
def sent() -> Iterator[SignalRecorder]:
    with recording() as recorder:
        yield recorder


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


"""Test override: the same real PostgreSQL and Redis, a throwaway database (``test_<name>``)."""

from saaskit.settings import *  # noqa: F403

SAASKIT_ENV = "test"
DEBUG = False

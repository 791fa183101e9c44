"""Test override: the same real PostgreSQL and Redis, a throwaway database (``test_<name>``)."""

from saaskit.settings import *  # noqa: F403

SAASKIT_ENV = "test"
DEBUG = False

# Production's Argon2 is slow on purpose; the tests hash with the same algorithm at its lowest cost (the
# production hasher stays in the list, so its hashes verify too).
PASSWORD_HASHERS = ["tests.support.hashers.CheapArgon2PasswordHasher", *PASSWORD_HASHERS]  # noqa: F405

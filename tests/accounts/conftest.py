import pytest

from accounts import authentication, keys
from accounts.api import base
from accounts.services import tokens


@pytest.fixture(autouse=True)
def _fresh_process_caches(settings, tmp_path):
    """Each test gets its own signing keys and empty per-process caches."""
    settings.JWT_KEYS_DIR = tmp_path / "jwt-keys"
    keys.KEY_RING.reload()
    tokens._verified_tokens.clear()
    authentication._user_cache.clear()
    base._membership_cache.clear()
    yield
    authentication._user_cache.clear()
    base._membership_cache.clear()


def _delete_throttle_counters() -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_CACHE_URL)  # the cache's own database (issue 13, case 6)
    for pattern in ("*throttle:*", "*:failures:*"):  # the throttle's and the failed-logins rule's counters
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)


@pytest.fixture(autouse=True)
def _empty_throttle_counters():
    """Not cache.clear(): the broker's queues live in the same Redis database."""
    _delete_throttle_counters()
    yield
    _delete_throttle_counters()

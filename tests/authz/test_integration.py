"""The whole loop with real processes: an event published by another app -> the bus -> a real Celery worker
running authz's consumer -> PostgreSQL -> the change feed -> this process's cache drops the subject."""

import pytest

from authz.cache import AuthzCache, watcher
from authz.models import Policy
from events import publish
from tests.factories import ProfileFactory
from tests.support import start_worker, wait_until

WORKER_ENV = {"EVENTS_SWEEP_INTERVAL_SECONDS": "0.5", "EVENTS_RETRY_BASE_SECONDS": "0.2",
              "EVENTS_RETRY_MAX_SECONDS": "0.5"}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_policy_events_are_applied_by_a_worker_and_revocations_reach_the_cache(feed, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    profile = ProfileFactory(role="customer")
    instance, member = profile.instance, profile.user
    policy = f"{member.pk}:get:orders:7"
    worker = start_worker(queues=("events", "authz"), beat=True, env=WORKER_ENV)
    try:
        publish("event-upsert-policy", {"policies": [policy]}, instance=instance)
        wait_until(lambda: Policy.objects.filter(user=member).exists(), timeout=30, message=worker.log)

        watcher.stop()
        watcher.ensure_started()
        wait_until(_fresh, timeout=10)  # the watcher caught up with the feed: memory may answer
        cache = AuthzCache(["orders"])
        assert cache.allowed(instance.pk, member.pk, "get", "orders", "7") is True
        assert (instance.pk, member.pk) in cache

        publish("event-remove-policy", {"policies": [policy]}, instance=instance)
        wait_until(lambda: not Policy.objects.filter(user=member).exists(), timeout=30, message=worker.log)
        wait_until(lambda: (instance.pk, member.pk) not in cache, timeout=10)

        assert cache.allowed(instance.pk, member.pk, "get", "orders", "7") is False
    finally:
        worker.stop()
        watcher.stop()


def _fresh() -> bool:
    from authz import cache as cache_module

    return cache_module._ok[0]

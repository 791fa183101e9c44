"""The broker, the authz change feed and the cache in Redis: ``cache.clear()`` (FLUSHDB) loses no message."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from authz import changefeed
from events import relay
from saaskit.settings import redis_url_with_db
from tests.events.bus import activity, publish_and_relay


@pytest.mark.django_db
def test_cache_clear_loses_no_message_and_no_authz_change(test_consumers):
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete("events_test")
    delivery = publish_and_relay(activity("record", "kept"))
    assert relay.send([(delivery.pk, "events_test")]) == 1
    changefeed.publish(instance_id=1, subject_ids=[7], resource_types=["orders"], version=1)
    feed_length = broker.xlen(changefeed.STREAM)
    cache.set("events-test:cached", "x", timeout=60)
    try:
        cache.clear()

        assert cache.get("events-test:cached") is None
        assert broker.llen("events_test") == 1
        assert broker.xlen(changefeed.STREAM) == feed_length >= 1
    finally:
        broker.delete("events_test")


def test_the_cache_has_a_database_of_its_own():
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_CACHE_URL != settings.REDIS_URL
    assert redis_url_with_db("redis://:secret@redis.internal:6379/0", 1) == "redis://:secret@redis.internal:6379/1"
    assert redis_url_with_db("unix:///run/redis.sock?db=2", 18) == "unix:///run/redis.sock?db=18"

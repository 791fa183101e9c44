"""The consumers are thin; their work is in services, tested here directly."""

import pytest

from authz import services
from authz.cache import default_cache, watcher
from authz.models import Policy

pytestmark = pytest.mark.django_db


def test_upsert_event_applies_valid_policies_and_skips_invalid(instance, member):
    rejected = services.policies_apply_requested(
        instance_id=instance.pk, policies=[f"{member.pk}:get:orders:1", "999999:get:orders:1", "bad"], remove=False)

    assert rejected == ["999999:get:orders:1", "bad"]
    assert [p.as_string() for p in Policy.objects.all()] == [f"{member.pk}:get:orders:1"]


def test_upsert_event_is_idempotent(instance, member):
    for _ in range(2):
        services.policies_apply_requested(instance_id=instance.pk, policies=[f"{member.pk}:get:orders:1"],
                                          remove=False)

    assert Policy.objects.count() == 1


def test_remove_event(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:get:orders:2"])

    services.policies_apply_requested(instance_id=instance.pk, policies=[f"{member.pk}:get:orders:1"], remove=True)

    assert [p.as_string() for p in Policy.objects.all()] == [f"{member.pk}:get:orders:2"]


def test_events_without_an_instance_change_nothing(member):
    assert services.policies_apply_requested(instance_id=None, policies=["1:get:orders:1"], remove=False) == [
        "1:get:orders:1"]
    assert Policy.objects.count() == 0


def test_authenticated_event_warms_the_cache(instance, member, feed):
    watcher.stop()
    watcher.ensure_started()
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() - watcher.synced_at > 0.5 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert services.cache_warm_for(user_id=member.pk, instance_slug=instance.slug) is True
        assert (instance.pk, member.pk) in default_cache()
        assert services.cache_warm_for(user_id=member.pk, instance_slug="nope") is False
    finally:
        watcher.stop()
        default_cache().clear()


@pytest.mark.parametrize(("name", "event_name"), [
    ("authz.upsert_policies", "event-upsert-policy"),
    ("authz.remove_policies", "event-remove-policy"),
    ("authz.warm_cache", "event-account-authenticated"),
    ("authz.purge_subject", "event-account-deleted"),
])
def test_consumers_are_registered_on_the_authz_queue(name, event_name):
    import authz.consumers  # noqa: F401 - registers the consumers
    from events.consumers import get_subscription

    subscription = get_subscription(name)
    assert subscription is not None
    assert (subscription.event_name, subscription.queue) == (event_name, "authz")


def test_upsert_consumer_applies_the_event(instance, member):
    from types import SimpleNamespace

    from authz.consumers import upsert_policies

    upsert_policies(SimpleNamespace(instance_id=instance.pk, payload={"policies": [f"{member.pk}:get:orders:3"]}))

    assert [p.as_string() for p in Policy.objects.all()] == [f"{member.pk}:get:orders:3"]


def test_account_deleted_consumer_purges(instance, member):
    from types import SimpleNamespace

    from authz.consumers import purge_subject

    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:3"])
    purge_subject(SimpleNamespace(instance_id=None, payload={"user_id": member.pk}))

    assert Policy.objects.count() == 0

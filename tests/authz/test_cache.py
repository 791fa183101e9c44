import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from authz import cache as cache_module
from authz import changefeed, selectors, services
from authz.cache import AuthzCache, watcher
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
BASE_DIR = Path(__file__).resolve().parents[2]


def wait_until(predicate, seconds=5.0):
    """Poll a condition (the watcher is another thread); the assertion after it is what counts."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)


@pytest.fixture
def synced(feed):
    """A running watcher that has caught up with the (empty) feed."""
    watcher.stop()
    watcher.ensure_started()
    wait_until(lambda: time.monotonic() - watcher.synced_at < 0.5)
    yield watcher
    watcher.stop()


def test_importing_does_not_start_the_watcher():
    code = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'saaskit.settings_test'); "
            "django.setup(); from authz import cache; print(cache.watcher.thread is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
                         check=False)

    assert out.stdout.strip() == "True"


def test_warm_check_does_no_query(synced, instance, member, django_assert_num_queries):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    cache = AuthzCache(["orders"])

    with django_assert_num_queries(1):
        assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is True
    with django_assert_num_queries(0):
        assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is True
        assert cache.allowed(instance.pk, member.pk, "get", "orders", 1) is True
        assert cache.allowed(instance.pk, member.pk, "get", "orders", 2) is False
        assert cache.allowed(instance.pk, member.pk, "cancel", "orders", "1") is False
    assert cache.loads == 1


def test_cache_counts_wildcards_groups_folders_and_roles(synced, instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    folder = services.resource_create(instance=instance, name="f")
    leaf = services.resource_create(instance=instance, name="leaf", parent_id=folder.pk)
    services.policies_upsert(instance=instance, policies=[
        f"{member.pk}:cancel:orders:*", f"group/{group.pk}:get:wallets:3", f"{member.pk}:get:resources:{folder.pk}"])
    cache = AuthzCache()

    assert cache.allowed(instance.pk, member.pk, "cancel", "orders", "77") is True
    assert cache.allowed(instance.pk, member.pk, "get", "wallets", "3") is True
    assert cache.allowed(instance.pk, member.pk, "get", "resources", str(leaf.pk)) is True
    assert cache.allowed(instance.pk, member.pk, "update", "products", "1") is False
    assert cache.allowed(instance.pk, member.pk, "update", "products", "1", role="clerk") is True


def test_non_member_gets_nothing(synced, instance, other_instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    assert AuthzCache().allowed(other_instance.pk, member.pk, "get", "orders", "1") is False


def test_types_outside_the_cache_go_to_the_database(synced, instance, member, django_assert_num_queries):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:wallets:1"])
    cache = AuthzCache(["orders"])

    with django_assert_num_queries(1):
        assert cache.allowed(instance.pk, member.pk, "get", "wallets", "1") is True
    assert len(cache) == 0


def test_revocation_drops_the_subject(synced, instance, member, django_capture_on_commit_callbacks):
    other = ProfileFactory(instance=instance, role="customer").user
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{other.pk}:get:orders:1"])
    cache = AuthzCache(["orders"])
    assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is True
    assert cache.allowed(instance.pk, other.pk, "get", "orders", "1") is True
    applied = watcher.applied

    with django_capture_on_commit_callbacks(execute=True):
        services.policies_remove(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    wait_until(lambda: watcher.applied > applied)

    assert (instance.pk, member.pk) not in cache
    assert (instance.pk, other.pk) in cache
    assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is False


def test_changes_to_other_types_keep_the_entry(synced, instance, member, django_capture_on_commit_callbacks):
    cache = AuthzCache(["orders"])
    cache.allowed(instance.pk, member.pk, "get", "orders", "1")
    applied = watcher.applied

    with django_capture_on_commit_callbacks(execute=True):
        services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:wallets:1"])
    wait_until(lambda: watcher.applied > applied)

    assert watcher.applied == applied + 1
    assert (instance.pk, member.pk) in cache


def test_a_stale_watcher_sends_checks_to_the_database(synced, instance, member, monkeypatch):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    cache = AuthzCache(["orders"])
    assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is True
    watcher.stop()
    monkeypatch.setattr(watcher, "ensure_started", lambda: None)

    # revoked without any change-feed entry: only the staleness guard can notice
    member.authz_policies.all().delete()

    assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is False


def test_lru_is_bounded(synced, instance):
    users = [ProfileFactory(instance=instance).user for _ in range(3)]
    cache = AuthzCache(["orders"], max_subjects=2)
    cache.allowed(instance.pk, users[0].pk, "get", "orders", "1")
    cache.allowed(instance.pk, users[1].pk, "get", "orders", "1")
    for meta in cache._entries.values():  # LRU has one-second granularity: make a touch due now
        meta[3] = 0.0

    cache.allowed(instance.pk, users[0].pk, "get", "orders", "1")  # a hit: users[0] becomes the youngest
    cache.allowed(instance.pk, users[2].pk, "get", "orders", "1")  # a load: evicts the oldest, users[1]

    assert list(cache._entries) == [(instance.pk, users[0].pk), (instance.pk, users[2].pk)]


def test_expired_entries_reload(synced, instance, member):
    cache = AuthzCache(["orders"], ttl_seconds=-1)

    cache.allowed(instance.pk, member.pk, "get", "orders", "1")
    cache.allowed(instance.pk, member.pk, "get", "orders", "1")

    assert cache.loads == 2


def test_subjects_loaded_together_do_not_expire_together(synced, instance):
    """Entries loaded in the same moment (a process start, a dropped feed) get expiries spread over the last
    fifth of the TTL: one instant of expiry would reload every subject at once, a burst of queries that a
    worker with one thread (the PDP listener) serves one after another while its requests wait."""
    users = [ProfileFactory(instance=instance).user for _ in range(20)]
    cache = AuthzCache(["orders"], ttl_seconds=100.0)
    for user in users:
        cache.allowed(instance.pk, user.pk, "get", "orders", "1")
    lives = [meta[0] - meta[2] for meta in cache._entries.values()]  # expires_at - loaded_at

    assert all(80.0 <= life <= 100.0 for life in lives)
    assert max(lives) - min(lives) > 5.0  # spread, not one instant (20 uniform draws over 20 s)
    assert all(meta[3] <= meta[0] for meta in cache._entries.values())  # a touch is never due after expiry


def test_a_load_racing_an_invalidation_is_not_kept(synced, instance, member, monkeypatch):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    real = selectors.subject_role_and_grants

    def racing(**kwargs):
        result = real(**kwargs)
        watcher.apply([changefeed.Change(instance.pk, frozenset({member.pk}), frozenset({"orders"}), 0)])
        return result

    monkeypatch.setattr(selectors, "subject_role_and_grants", racing)
    cache = AuthzCache(["orders"])

    assert cache.allowed(instance.pk, member.pk, "get", "orders", "1") is True
    assert (instance.pk, member.pk) not in cache


def test_fork_restarts_the_watcher_with_an_empty_cache(synced, instance, member):
    cache = AuthzCache(["orders"])
    cache.allowed(instance.pk, member.pk, "get", "orders", "1")
    assert len(cache) == 1
    read, write = os.pipe()

    pid = os.fork()
    if pid == 0:  # child: report and leave without running any test machinery
        state = {"thread": watcher.thread is None, "entries": len(cache), "stale": watcher.synced_at == float("-inf")}
        os.write(write, json.dumps(state).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)

    assert json.loads(os.read(read, 1000)) == {"thread": True, "entries": 0, "stale": True}
    assert len(cache) == 1


def test_subject_checks_count_the_profile_role_and_trust_it_until_the_feed_says_otherwise(
        synced, instance, member, django_assert_num_queries, django_capture_on_commit_callbacks):
    cache = AuthzCache(["products"])
    assert cache.allowed_for_subject(instance.pk, member.pk, "update", "products", "1") is False
    profile = member.profiles.get()
    profile.role = "clerk"
    profile.save(update_fields=["role"])  # not committed yet: nobody was told

    with django_assert_num_queries(0):  # warm: the role is trusted (no reload on a timer)
        assert cache.allowed_for_subject(instance.pk, member.pk, "update", "products", "1") is False
    applied = watcher.applied
    with django_capture_on_commit_callbacks(execute=True):
        profile.save(update_fields=["role"])
    wait_until(lambda: watcher.applied > applied)

    assert (instance.pk, member.pk) not in cache
    assert cache.allowed_for_subject(instance.pk, member.pk, "update", "products", "1") is True


@pytest.mark.parametrize("change", ["role_changed", "member_removed", "instance_deactivated", "instance_deleted"])
def test_member_and_instance_changes_drop_the_subject(synced, instance, member, change,
                                                      django_capture_on_commit_callbacks):
    from accounts.models import Profile

    profile = Profile.objects.get(user=member, instance=instance)
    profile.role = "clerk"
    profile.save(update_fields=["role"])
    bystander = ProfileFactory(role="clerk").user  # another instance: untouched
    cache = AuthzCache(["products"])
    assert cache.allowed_for_subject(instance.pk, member.pk, "update", "products", "1") is True
    assert cache.allowed_for_subject(bystander.profiles.get().instance_id, bystander.pk, "update", "products",
                                     "1") is True
    applied = watcher.applied

    with django_capture_on_commit_callbacks(execute=True):
        if change == "role_changed":
            profile.role = "customer"
            profile.save(update_fields=["role", "updated_at"])
        elif change == "member_removed":
            profile.delete()
        elif change == "instance_deactivated":
            instance.is_active = False
            instance.save()
        else:
            instance.delete()
    wait_until(lambda: watcher.applied > applied)

    assert (instance.pk, member.pk) not in cache
    assert (bystander.profiles.get().instance_id, bystander.pk) in cache
    if change in ("role_changed", "member_removed", "instance_deleted"):
        assert cache.allowed_for_subject(instance.pk, member.pk, "update", "products", "1") is False


def test_a_login_or_an_unrelated_profile_save_publishes_nothing(synced, instance, member, feed,
                                                                django_capture_on_commit_callbacks):
    from django.contrib.auth.models import update_last_login

    with django_capture_on_commit_callbacks(execute=True):
        update_last_login(None, member)
        member.profiles.get().save(update_fields=["updated_at"])

    assert feed.xlen(changefeed.STREAM) == 0


def test_authorized_from_memory(synced, instance, member, django_assert_num_queries,
                                django_capture_on_commit_callbacks):
    folder = services.resource_create(instance=instance, name="folder")
    services.resource_create(instance=instance, name="leaf", parent_id=folder.pk)
    services.resource_create(instance=instance, name="other")
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:{folder.pk}"])
    cache = AuthzCache()
    assert cache.authorized(instance.pk, member.pk, "leaf") is True
    assert cache.authorized(instance.pk, member.pk, "folder") is True

    with django_assert_num_queries(0):
        assert cache.authorized(instance.pk, member.pk, "leaf") is True
        assert cache.authorized(instance.pk, member.pk, "folder") is True
    assert cache.authorized(instance.pk, member.pk, "other") is False
    assert cache.authorized(instance.pk, member.pk, "missing") is False

    applied = watcher.applied
    with django_capture_on_commit_callbacks(execute=True):
        services.resource_delete(instance=instance, resource=folder)
    wait_until(lambda: watcher.applied > applied)

    assert (instance.pk, "leaf") not in cache._names
    assert cache.authorized(instance.pk, member.pk, "leaf") is False


def test_default_cache_is_one_per_process():
    assert cache_module.default_cache() is cache_module.default_cache()


# --- two real processes -------------------------------------------------------------------------------
def _run_probe(instance, member, mode):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "saaskit.settings_test", "PYTHONPATH": str(BASE_DIR)}
    probe = subprocess.Popen([sys.executable, str(Path(__file__).with_name("cache_probe.py")),
                              connection.settings_dict["NAME"], str(instance.pk), str(member.pk), mode],
                             cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
    reports: list[dict] = []
    reader = threading.Thread(target=lambda: [reports.append(json.loads(line)) for line in probe.stdout],
                              daemon=True)
    reader.start()
    return probe, reports


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["normal", "stuck"])
def test_revocation_reaches_another_process_within_one_second(mode):
    changefeed.client().delete(changefeed.STREAM)
    profile = ProfileFactory(role="customer")
    instance, member = profile.instance, profile.user
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    probe, reports = _run_probe(instance, member, mode)
    try:
        wait_until(lambda: any(r["ready"] and r["allowed"] for r in reports), seconds=30)
        assert any(r["ready"] and r["allowed"] for r in reports)

        services.policies_remove(instance=instance, policies=[f"{member.pk}:get:orders:1"])
        committed = time.time()
        wait_until(lambda: reports and reports[-1]["t"] > committed + 1.5, seconds=10)
    finally:
        probe.kill()
        probe.wait()

    after_bound = [r for r in reports if r["t"] > committed + 1.0]
    assert len(after_bound) > 0
    assert [r for r in after_bound if r["allowed"]] == []

"""The local cached authz library: per process, in memory, the policies of recently served subjects.

    cache = AuthzCache(["orders"])          # the resource types this process's app owns
    cache.allowed(instance_id, user_id, "cancel", "orders", "15", role=ctx.role)

A warm check is two dict/set lookups and no call into the clock: it touches neither PostgreSQL nor Redis.
A miss loads that subject's grants for the cache's types in one query (``selectors.subject_role_and_grants``)
into a bounded LRU (one-second granularity) with a TTL (each entry's shortened by up to ``TTL_JITTER``).

Invalidation, in every process that uses a cache: a daemon *watcher* thread follows the change feed in
Redis (``authz.changefeed``: a stream read with a blocking XREAD, woken at once by a new entry and
returning at least every ``POLL_SECONDS``) and drops the affected subjects. The feed carries policy changes
and, since accounts publishes them too, every change of a member (role, removal, external id) and of an
instance (deactivation): so an entry, the subject's profile role included, is trusted until the feed says
otherwise (or its TTL ends), never reloaded on a timer. Other per-process caches that must forget on the same
changes (AuthZEN's subject names and service keys) join with ``watcher.follow``. Each read that caught up with
the feed stamps ``synced_at``. A daemon *clock* thread ticks every ``TICK_SECONDS`` and publishes the time
and whether ``now - synced_at <= STALENESS_SECONDS``; memory answers only while that holds, otherwise
checks go to PostgreSQL. So a process stops answering from memory at most STALENESS + TICK (0.92 s) after
its last successful sync: one second after a revocation is committed and in the feed, no process allows
it from memory, even when its watcher is stuck or Redis is unreachable.

Counting is plain ``int`` attributes (``hits``, ``slow_checks``, ``loads``) bumped on the check path and
handed to Prometheus by the clock thread about once a second (``metrics_flush``): a prometheus-client
``Counter.inc()`` per check would cost a noticeable share of a warm check, and counters (not scrape-time
gauges) add up across processes in multiprocess mode. Increments from threads racing on one attribute may
lose a count now and then; that is accepted for a metric.

A load that raced with an invalidation (the watcher applied a change while the query ran) is answered
but not stored. Both threads start lazily on the first check (not at import) and are restarted in a
forked child (``os.register_at_fork``), whose inherited entries are dropped.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from authz import changefeed, selectors
from authz.registry import RESOURCE_TYPES, WILDCARD
from authz.role_grants import ROLE_PAIRS

logger = logging.getLogger(__name__)

STALENESS_SECONDS = 0.9
TICK_SECONDS = 0.02
METRICS_EVERY_TICKS = 50  # about once a second
POLL_SECONDS = 0.25
# An entry lives between (1 - TTL_JITTER) and 1 times its cache's TTL, drawn at its load: subjects loaded in
# one moment (a start, a dropped feed) must not all expire, and reload, in one moment too.
TTL_JITTER = 0.2
_EMPTY_PAIRS: frozenset[tuple[str, str]] = frozenset()
_monotonic = time.monotonic

# Published by the clock thread (one-item lists: the hot path reads them with one global lookup each).
_now = [0.0]  # monotonic time of the last tick
_ok = [False]  # memory may answer: the watcher synced within STALENESS_SECONDS
# Public names of the same lists for the followers' hot paths (``if memory_ok[0]: ...``).
memory_ok = _ok
clock_now = _now

# A subject's entry: [expires_at, profile role or None, loaded_at, next LRU touch due (never after expires_at)]
Meta = list[Any]


class _Watcher:
    """Follows the change feed for every cache of this process, and keeps the clock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._synced_at = float("-inf")
        self.generation = 0
        self.caches: weakref.WeakSet[AuthzCache] = weakref.WeakSet()
        self.thread: threading.Thread | None = None
        self.clock: threading.Thread | None = None
        self.last_id: bytes | None = None
        self.applied = 0  # changes applied (for tests and diagnostics)
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._flushed: dict[str, int] = {}  # counter name -> count already handed to Prometheus
        self.followers: list[Any] = []  # objects with on_change(change) and on_clear(), called under the lock

    def follow(self, follower: Any) -> None:
        """Make ``follower`` (``on_change(change)``, ``on_clear()``) hear every change this watcher applies
        and every wholesale drop, under the watcher's lock. Idempotent."""
        with self.lock:
            if follower not in self.followers:
                self.followers.append(follower)

    @property
    def synced_at(self) -> float:
        """When the last read of the feed that caught up with it began (monotonic seconds)."""
        return self._synced_at

    @synced_at.setter
    def synced_at(self, value: float) -> None:
        self._synced_at = value
        self._tick()

    def _tick(self) -> None:
        now = _monotonic()
        _now[0] = now
        _ok[0] = now - self._synced_at <= STALENESS_SECONDS

    def ensure_started(self) -> None:
        if self.thread is not None and self.thread.is_alive() and self.clock is not None and self.clock.is_alive():
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self._stop = threading.Event()
                self.thread = threading.Thread(target=self._run, args=(self._stop,), name="authz-cache-watcher",
                                               daemon=True)
                self.thread.start()
            if self.clock is None or not self.clock.is_alive():
                self.clock = threading.Thread(target=self._run_clock, args=(self._stop,), name="authz-cache-clock",
                                              daemon=True)
                self.clock.start()

    def stop(self) -> None:
        """Stop both threads (tests); the next check starts fresh ones."""
        self._stop.set()
        for thread in (self.thread, self.clock):
            if thread is not None:
                thread.join(timeout=POLL_SECONDS * 4 + 1)
        self.thread = None
        self.clock = None
        self.last_id = None
        self.synced_at = float("-inf")

    def _run_clock(self, stop: threading.Event) -> None:
        ticks = 0
        while not stop.wait(TICK_SECONDS):
            try:
                self._tick()
                ticks += 1
                if ticks % METRICS_EVERY_TICKS == 0:
                    self.metrics_flush()
            except Exception:  # noqa: BLE001 - the clock must keep ticking
                _ok[0] = False
        _ok[0] = False

    def counts(self) -> dict[str, int]:
        """This process's totals: checks answered from memory (``hits``), checks that were not
        (``slow_checks``), subjects loaded from PostgreSQL (``loads``), plus the followers' own counts."""
        caches = list(self.caches)
        totals = {"hits": sum(c.hits for c in caches), "slow_checks": sum(c.slow_checks for c in caches),
                  "loads": sum(c.loads for c in caches)}
        for follower in list(self.followers):
            for name, value in getattr(follower, "counts", dict)().items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def metrics_flush(self) -> None:
        """Hand the plain counters to Prometheus (``saaskit.metrics``) about once a second, off the check path
        (see the module docstring)."""
        from saaskit import metrics

        counters = {"hits": metrics.AUTHZ_CACHE_HITS, "slow_checks": metrics.AUTHZ_SLOW_CHECKS,
                    "loads": metrics.AUTHZ_CACHE_MISSES}
        with self._flush_lock:  # the clock thread and a test (or a scrape) may flush at once
            for name, value in self.counts().items():
                counter = counters.get(name) or metrics.AUTHZ_FOLLOWER_COUNTS.get(name)
                done = self._flushed.get(name, 0)
                if counter is not None and value > done:
                    counter.inc(value - done)
                self._flushed[name] = value
        metrics.AUTHZ_STALENESS.set(max(0.0, _monotonic() - self._synced_at) if self._synced_at > float("-inf")
                                    else 0.0)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._poll_once()
            except Exception:  # Redis down or a bad entry: forget everything, reconnect, try again
                logger.warning("authz cache watcher lost the change feed; dropping cached policies", exc_info=True)
                self.last_id = None
                self.drop_all()
                stop.wait(0.2)

    def _poll_once(self) -> None:
        client = changefeed.client()
        started = _monotonic()
        if self.last_id is None:
            last = client.xrevrange(changefeed.STREAM, count=1)
            self.last_id = last[0][0] if last else b"0-0"
            self.drop_all()  # entries loaded while nobody watched cannot be trusted
            self.synced_at = started
            return
        response = client.xread({changefeed.STREAM: self.last_id}, count=1000, block=int(POLL_SECONDS * 1000))
        entries = response[0][1] if response else []
        if entries:
            self.apply([changefeed.decode(fields) for _, fields in entries])
            self.last_id = entries[-1][0]
        if len(entries) < 1000:  # caught up with everything written before ``started``
            self.synced_at = started

    def apply(self, changes: Iterable[changefeed.Change]) -> None:
        with self.lock:
            for change in changes:
                for cache in list(self.caches):
                    cache._drop(change)
                for follower in self.followers:
                    follower.on_change(change)
                self.applied += 1
            self.generation += 1

    def drop_all(self) -> None:
        with self.lock:
            for cache in list(self.caches):
                cache._clear_unlocked()
            for follower in self.followers:
                follower.on_clear()
            self.generation += 1

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.thread = None
        self.clock = None
        self.last_id = None
        self._stop = threading.Event()
        self.synced_at = float("-inf")
        for cache in list(self.caches):
            cache._clear_unlocked()
        for follower in self.followers:
            follower.on_clear()


watcher = _Watcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=watcher.after_fork_in_child)


class AuthzCache:
    """Policies of recently served subjects for ``resource_types``, in this process's memory."""

    def __init__(self, resource_types: Iterable[str] | None = None, *, max_subjects: int = 10_000,
                 ttl_seconds: float = 300.0) -> None:
        types = frozenset(resource_types) if resource_types is not None else frozenset(RESOURCE_TYPES)
        unknown = sorted(types - set(RESOURCE_TYPES))
        if unknown:
            raise ValueError(f"unknown resource types: {', '.join(unknown)}")
        self.resource_types = types
        self._type_list = sorted(types)
        # every (type, action) this cache answers; a loaded subject has a row for each (maybe empty)
        self._pairs = tuple(sorted((t, a) for t in types for a in RESOURCE_TYPES[t].actions))
        self._pair_set = frozenset(self._pairs)
        self.max_subjects = max_subjects
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[tuple[int, int], Meta] = OrderedDict()  # LRU of subjects
        # (instance_id, user_id, resource_type, action) -> (meta, frozenset of ids: str, and int when numeric)
        self._flat: dict[tuple[int, int, str, str], tuple[Meta, frozenset[object]]] = {}
        self._get = self._flat.get
        self._names: dict[tuple[int, str], int] = {}  # (instance_id, resource name) -> Resource id
        self.hits = 0  # checks answered from memory
        self.loads = 0  # subjects loaded from PostgreSQL
        self.slow_checks = 0  # checks not answered from memory as they came (a load or the database)
        watcher.caches.add(self)

    # --- the check ---------------------------------------------------------------------------------
    def allowed(self, instance_id: int, user_id: int, action: str, resource_type: str, resource_id: object,
                role: str | None = None) -> bool:
        """Whether the user may ``action`` the object: policies (direct, ``*``, group, folder) plus what
        ``role`` (the caller's acting role, if given) allows. Warm: no I/O, two lookups."""
        hit = self._get((instance_id, user_id, resource_type, action))
        if hit is not None and _ok[0]:
            meta = hit[0]
            now = _now[0]
            if now < meta[3] or self._touch(meta, now, instance_id, user_id):
                self.hits += 1
                ids = hit[1]
                if resource_id in ids or WILDCARD in ids:
                    return True
                return role is not None and (resource_type, action) in ROLE_PAIRS.get(role, _EMPTY_PAIRS)
        return self._allowed_slow(instance_id, user_id, action, resource_type, str(resource_id), role)

    def _allowed_slow(self, instance_id: int, user_id: int, action: str, resource_type: str, resource_id: str,
                      role: str | None) -> bool:
        self.slow_checks += 1
        if role is not None and (resource_type, action) in ROLE_PAIRS.get(role, _EMPTY_PAIRS):
            return True
        if not _ok[0] or (resource_type, action) not in self._pair_set:
            watcher.ensure_started()
            return selectors.check(instance_id=instance_id, user_id=user_id, action=action,
                                   resource_type=resource_type, resource_id=resource_id, use_profile_role=False)
        ids = self._load((instance_id, user_id), _monotonic())[1][(resource_type, action)]
        return resource_id in ids or WILDCARD in ids

    def _touch(self, meta: Meta, now: float, instance_id: int, user_id: int) -> bool:
        """Whether the entry is still alive; if so, LRU at one-second granularity: a hit moves its subject to
        the young end at most once a second. The touch is never due after the expiry (``meta[3] <= meta[0]``),
        so a warm hit before it needs one comparison for both."""
        if now >= meta[0]:
            return False
        meta[3] = min(now + 1.0, meta[0])
        try:  # noqa: SIM105 - cheaper than contextlib.suppress on this path
            self._entries.move_to_end((instance_id, user_id))
        except KeyError:  # the watcher dropped it a moment ago; this answer is still within the bound
            pass
        return True

    def allowed_for_subject(self, instance_id: int, user_id: int, action: str, resource_type: str,
                            resource_id: object) -> bool:
        """Like ``allowed`` for a subject named by id (not the caller): its *profile* role counts (None, not a
        member: nothing does). Role changes, removals and deactivations come through the change feed
        (accounts publishes them), so a warm answer is two lookups, like ``allowed``'s."""
        hit = self._get((instance_id, user_id, resource_type, action))
        if hit is not None and _ok[0]:
            meta = hit[0]
            now = _now[0]
            if now < meta[3] or self._touch(meta, now, instance_id, user_id):
                self.hits += 1
                ids = hit[1]
                if resource_id in ids or WILDCARD in ids:
                    return True
                return (resource_type, action) in ROLE_PAIRS.get(meta[1], _EMPTY_PAIRS)
        self.slow_checks += 1
        resource_id = str(resource_id)
        if not _ok[0] or (resource_type, action) not in self._pair_set:
            watcher.ensure_started()
            return selectors.check(instance_id=instance_id, user_id=user_id, action=action,
                                   resource_type=resource_type, resource_id=resource_id)
        meta, by_pair = self._load((instance_id, user_id), _monotonic())
        ids = by_pair[(resource_type, action)]
        return (resource_id in ids or WILDCARD in ids
                or (resource_type, action) in ROLE_PAIRS.get(meta[1], _EMPTY_PAIRS))

    def authorized(self, instance_id: int, user_id: int, resource_name: str, action: str = "get") -> bool:
        """Seed 004's question (may the user access the resource of this name) from memory when warm."""
        if "resources" not in self.resource_types or not _ok[0]:
            watcher.ensure_started()
            return selectors.authorized(instance_id=instance_id, user_id=user_id, resource_name=resource_name,
                                        action=action)
        resource_id = self._names.get((instance_id, resource_name))
        if resource_id is None:
            generation = watcher.generation
            resource_id = selectors.resource_id_by_name(instance_id=instance_id, name=resource_name)
            if resource_id is None:
                return False
            with watcher.lock:
                if watcher.generation == generation:
                    if len(self._names) >= self.max_subjects * 10:
                        self._names.clear()
                    self._names[(instance_id, resource_name)] = resource_id
        return self.allowed_for_subject(instance_id, user_id, action, "resources", resource_id)

    def visible_ids(self, instance_id: int, user_id: int, action: str, resource_type: str) -> frozenset[str]:
        """Ids the user holds ``action`` on by policy (``*`` included when granted), from the cache."""
        if not _ok[0] or (resource_type, action) not in self._pair_set:
            watcher.ensure_started()
            grants = selectors.subject_grants(instance_id=instance_id, user_id=user_id, resource_types=[resource_type])
            return frozenset(rid for rtype, act, rid in grants if rtype == resource_type and act == action)
        now = _monotonic()
        hit = self._get((instance_id, user_id, resource_type, action))
        ids = hit[1] if hit is not None and now < hit[0][0] else self._load((instance_id, user_id), now)[1][
            (resource_type, action)]
        return frozenset(rid for rid in ids if isinstance(rid, str))

    def warm(self, instance_id: int, user_id: int) -> None:
        """Load a subject now (e.g. when it authenticates) so its first request is a hit."""
        if not _ok[0]:
            watcher.ensure_started()
            return
        self._load((instance_id, user_id), _monotonic())

    def clear(self) -> None:
        with watcher.lock:
            self._clear_unlocked()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[int, int]) -> bool:
        return key in self._entries

    # --- internals ---------------------------------------------------------------------------------
    def _clear_unlocked(self) -> None:
        self._entries.clear()
        self._flat.clear()
        self._names.clear()

    def _remove_unlocked(self, key: tuple[int, int]) -> None:
        if self._entries.pop(key, None) is not None:
            flat = self._flat
            for rtype, action in self._pairs:
                flat.pop((key[0], key[1], rtype, action), None)

    def _load(self, key: tuple[int, int], now: float) -> tuple[Meta, dict[tuple[str, str], frozenset[object]]]:
        generation = watcher.generation
        role, grants = selectors.subject_role_and_grants(instance_id=key[0], user_id=key[1],
                                                         resource_types=self._type_list)
        self.loads += 1
        collected: dict[tuple[str, str], set[object]] = {pair: set() for pair in self._pairs}
        for rtype, action, rid in grants:
            ids = collected.get((rtype, action))
            if ids is not None:
                ids.add(rid)
                if rid.isdigit() and len(rid) < 19 and str(int(rid)) == rid:
                    ids.add(int(rid))  # so an int id needs no str() on the hot path
        by_pair = {pair: frozenset(ids) for pair, ids in collected.items()}
        ttl = self.ttl_seconds * (1.0 - TTL_JITTER * random.random())
        meta: Meta = [now + ttl, role, now, now + min(1.0, ttl)]
        with watcher.lock:
            if watcher.generation == generation:  # no invalidation ran while we read: safe to keep
                self._remove_unlocked(key)
                self._entries[key] = meta
                for (rtype, action), ids in by_pair.items():
                    self._flat[(key[0], key[1], rtype, action)] = (meta, ids)
                while len(self._entries) > self.max_subjects:
                    self._remove_unlocked(next(iter(self._entries)))
        return meta, by_pair

    def _drop(self, change: changefeed.Change) -> None:
        """Called by the watcher under its lock."""
        if change.kind == changefeed.KEY:  # service keys decide nothing about a subject
            return
        if change.resource_types and not (change.resource_types & self.resource_types):
            return
        if change.subject_ids is None:
            for key in [k for k in self._entries if k[0] == change.instance_id]:
                self._remove_unlocked(key)
            if not change.resource_types or "resources" in change.resource_types:  # moved or deleted folders
                for name_key in [k for k in self._names if k[0] == change.instance_id]:
                    del self._names[name_key]
        else:
            for subject in change.subject_ids:
                self._remove_unlocked((change.instance_id, subject))


_default: AuthzCache | None = None


def default_cache() -> AuthzCache:
    """The process-wide cache over every registered resource type (apps may make narrower ones)."""
    global _default
    if _default is None:
        _default = AuthzCache()
    return _default

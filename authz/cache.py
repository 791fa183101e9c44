"""The local cached authz library: per process, in memory, the policies of recently served subjects.

    cache = AuthzCache(["orders"])          # the resource types this process's app owns
    cache.allowed(instance_id, user_id, "cancel", "orders", "15", role=ctx.role)

A warm check is a few dict/set lookups: it touches neither PostgreSQL nor Redis. A miss loads that
subject's grants for the cache's types in one query (``selectors.subject_grants``) into a bounded LRU
with a TTL.

Invalidation, in every process that uses a cache: one daemon watcher thread per process follows the
change feed in Redis (``authz.changefeed``: a stream read with a blocking XREAD, woken at once by new
entries and returning at least every ``POLL_SECONDS``) and drops the affected subjects. Each successful
read stamps ``synced_at``; a check serves from memory only while ``now - synced_at <= STALENESS_SECONDS``
(1 s), otherwise it asks PostgreSQL. So one second after a revocation is committed and written to the
feed, no process allows it from memory, even when the watcher is stuck or Redis is unreachable.

A load that raced with an invalidation (the watcher applied a change while the query ran) is answered
but not stored. The watcher starts lazily on the first check (not at import) and is restarted in a
forked child (``os.register_at_fork``), whose inherited entries are dropped.
"""

from __future__ import annotations

import logging
import os
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

STALENESS_SECONDS = 1.0
POLL_SECONDS = 0.25
_EMPTY_PAIRS: frozenset[tuple[str, str]] = frozenset()
_monotonic = time.monotonic

# [expires_at, {(type, action): frozenset of ids (str, and int for numeric ids)}, profile role or None,
#  loaded_at, last LRU touch]
Entry = list[Any]


class _Watcher:
    """Follows the change feed for every cache of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.synced_at = float("-inf")
        self.generation = 0
        self.caches: weakref.WeakSet[AuthzCache] = weakref.WeakSet()
        self.thread: threading.Thread | None = None
        self.last_id: bytes | None = None
        self.applied = 0  # changes applied (for tests and diagnostics)
        self._stop = threading.Event()

    def ensure_started(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self._stop = threading.Event()
            self.thread = threading.Thread(target=self._run, args=(self._stop,), name="authz-cache-watcher",
                                           daemon=True)
            self.thread.start()

    def stop(self) -> None:
        """Stop the thread (tests); the next check starts a fresh one."""
        self._stop.set()
        thread = self.thread
        if thread is not None:
            thread.join(timeout=POLL_SECONDS * 4 + 1)
        self.thread = None
        self.last_id = None
        self.synced_at = float("-inf")

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
                self.applied += 1
            self.generation += 1

    def drop_all(self) -> None:
        with self.lock:
            for cache in list(self.caches):
                cache._entries.clear()
                cache._names.clear()
            self.generation += 1

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self.thread = None
        self.last_id = None
        self.synced_at = float("-inf")
        self._stop = threading.Event()
        for cache in list(self.caches):
            cache._entries.clear()
            cache._names.clear()


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
        # every (type, action) this cache answers; each entry maps all of them (to an empty set if need be)
        self._pairs = frozenset((t, a) for t in types for a in RESOURCE_TYPES[t].actions)
        self.max_subjects = max_subjects
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[tuple[int, int], Entry] = OrderedDict()
        self._names: dict[tuple[int, str], int] = {}  # (instance_id, resource name) -> Resource id
        self.loads = 0  # misses that went to PostgreSQL (tests, diagnostics)
        watcher.caches.add(self)

    # --- the check ---------------------------------------------------------------------------------
    def allowed(self, instance_id: int, user_id: int, action: str, resource_type: str, resource_id: object,
                role: str | None = None) -> bool:
        """Whether the user may ``action`` the object: policies (direct, ``*``, group, folder) plus what
        ``role`` (the caller's acting role, if given) allows. Warm: no I/O, a handful of dict lookups."""
        now = _monotonic()
        entry = self._entries.get((instance_id, user_id))
        if entry is not None and now < entry[0] and now - watcher.synced_at <= STALENESS_SECONDS:
            ids = entry[1].get((resource_type, action))
            if ids is not None:  # None: a type this cache does not hold (or an unknown action)
                if now - entry[4] > 1.0:
                    self._touch(entry, now, instance_id, user_id)
                if resource_id in ids or WILDCARD in ids:
                    return True
                return role is not None and (resource_type, action) in ROLE_PAIRS.get(role, _EMPTY_PAIRS)
        return self._allowed_slow(instance_id, user_id, action, resource_type, str(resource_id), role, now)

    def _allowed_slow(self, instance_id: int, user_id: int, action: str, resource_type: str, resource_id: str,
                      role: str | None, now: float) -> bool:
        if role is not None and (resource_type, action) in ROLE_PAIRS.get(role, _EMPTY_PAIRS):
            return True
        if now - watcher.synced_at > STALENESS_SECONDS or (resource_type, action) not in self._pairs:
            watcher.ensure_started()
            return selectors.check(instance_id=instance_id, user_id=user_id, action=action,
                                   resource_type=resource_type, resource_id=resource_id, use_profile_role=False)
        entry = self._load((instance_id, user_id), now)
        ids = entry[1][(resource_type, action)]
        return resource_id in ids or WILDCARD in ids

    def _touch(self, entry: Entry, now: float, instance_id: int, user_id: int) -> None:
        """LRU at one-second granularity: a hit moves its entry to the young end at most once a second."""
        entry[4] = now
        try:
            self._entries.move_to_end((instance_id, user_id))
        except KeyError:  # the watcher dropped it a moment ago; this answer is still within the bound
            pass

    def allowed_for_subject(self, instance_id: int, user_id: int, action: str, resource_type: str,
                            resource_id: object) -> bool:
        """Like ``allowed`` for a subject named by id (not the caller): its *profile* role counts. The role
        is not in the change feed (accounts owns it), so an entry older than ``STALENESS_SECONDS`` is
        reloaded before its role is trusted: one query per subject per second at most."""
        resource_id = str(resource_id)
        now = _monotonic()
        if now - watcher.synced_at > STALENESS_SECONDS or (resource_type, action) not in self._pairs:
            watcher.ensure_started()
            return selectors.check(instance_id=instance_id, user_id=user_id, action=action,
                                   resource_type=resource_type, resource_id=resource_id)
        key = (instance_id, user_id)
        entry = self._entries.get(key)
        if entry is None or entry[0] < now or now - entry[3] > STALENESS_SECONDS:
            entry = self._load(key, now)
        ids = entry[1][(resource_type, action)]
        return (resource_id in ids or WILDCARD in ids
                or (resource_type, action) in ROLE_PAIRS.get(entry[2], _EMPTY_PAIRS))  # type: ignore[arg-type]

    def authorized(self, instance_id: int, user_id: int, resource_name: str, action: str = "get") -> bool:
        """Seed 004's question (may the user access the resource of this name) from memory when warm."""
        if "resources" not in self.resource_types or _monotonic() - watcher.synced_at > STALENESS_SECONDS:
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
        now = _monotonic()
        if now - watcher.synced_at > STALENESS_SECONDS or (resource_type, action) not in self._pairs:
            watcher.ensure_started()
            grants = selectors.subject_grants(instance_id=instance_id, user_id=user_id, resource_types=[resource_type])
            return frozenset(rid for rtype, act, rid in grants if rtype == resource_type and act == action)
        key = (instance_id, user_id)
        entry = self._entries.get(key)
        if entry is None or entry[0] < now:
            entry = self._load(key, now)
        return frozenset(rid for rid in entry[1][(resource_type, action)] if isinstance(rid, str))

    def warm(self, instance_id: int, user_id: int) -> None:
        """Load a subject now (e.g. when it authenticates) so its first request is a hit."""
        if _monotonic() - watcher.synced_at > STALENESS_SECONDS:
            watcher.ensure_started()
            return
        self._load((instance_id, user_id), _monotonic())

    def clear(self) -> None:
        with watcher.lock:
            self._entries.clear()
            self._names.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[int, int]) -> bool:
        return key in self._entries

    # --- internals ---------------------------------------------------------------------------------
    def _load(self, key: tuple[int, int], now: float) -> Entry:
        generation = watcher.generation
        role, grants = selectors.subject_role_and_grants(instance_id=key[0], user_id=key[1],
                                                         resource_types=self._type_list)
        self.loads += 1
        by_pair: dict[tuple[str, str], set[object]] = {pair: set() for pair in self._pairs}
        for rtype, action, rid in grants:
            ids = by_pair.get((rtype, action))
            if ids is not None:
                ids.add(rid)
                if rid.isdigit() and len(rid) < 19 and str(int(rid)) == rid:
                    ids.add(int(rid))  # so an int id needs no str() on the hot path
        entry: Entry = [now + self.ttl_seconds, {pair: frozenset(ids) for pair, ids in by_pair.items()}, role, now,
                        now]
        with watcher.lock:
            if watcher.generation == generation:  # no invalidation ran while we read: safe to keep
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_subjects:
                    self._entries.popitem(last=False)
        return entry

    def _drop(self, change: changefeed.Change) -> None:
        """Called by the watcher under its lock."""
        if change.resource_types and not (change.resource_types & self.resource_types):
            return
        if change.subject_ids is None:
            for key in [k for k in self._entries if k[0] == change.instance_id]:
                del self._entries[key]
            if not change.resource_types or "resources" in change.resource_types:  # moved or deleted folders
                for name_key in [k for k in self._names if k[0] == change.instance_id]:
                    del self._names[name_key]
        else:
            for subject in change.subject_ids:
                self._entries.pop((change.instance_id, subject), None)


_default: AuthzCache | None = None


def default_cache() -> AuthzCache:
    """The process-wide cache over every registered resource type (apps may make narrower ones)."""
    global _default
    if _default is None:
        _default = AuthzCache()
    return _default

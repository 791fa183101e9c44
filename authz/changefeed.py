"""The change log in Redis that every process's authz cache follows.

Each committed change appends one entry to a capped Redis stream (``XADD``, after commit):
``{"i": instance_id, "s": "3,7" or "*", "t": "orders,products", "v": version, "k": kind}``. The kind says what
changed (absent: ``policy``):

- ``policy``: policies, groups or folders (``authz.services``);
- ``member``: a profile was created, deleted, or its role or external id changed (the subjects' roles and
  how AuthZEN names them);
- ``instance``: an instance was deactivated, reactivated or deleted (every subject, every service key of it);
- ``key``: a service client or key of the instance was created, changed, revoked or deleted. Watchers read it with
a blocking ``XREAD`` (woken at once by a new entry, and at least every few hundred milliseconds), which
gives both the push path and the polling floor with one connection; an entry cannot be lost the way a
pub/sub message can, because a reader resumes from the last id it saw.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

STREAM = "saaskit:authz:changes"
MAXLEN = 100_000
ALL_SUBJECTS = "*"
POLICY, MEMBER, INSTANCE, KEY = "policy", "member", "instance", "key"
KINDS = frozenset({POLICY, MEMBER, INSTANCE, KEY})

_client: redis.Redis | None = None
_client_pid: int | None = None


def client() -> redis.Redis:
    """A per-process Redis client (recreated after fork)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2,
                                       health_check_interval=30)
        _client_pid = os.getpid()
    return _client


@dataclass(frozen=True, slots=True)
class Change:
    instance_id: int
    subject_ids: frozenset[int] | None  # None: every subject of the instance
    resource_types: frozenset[str]  # empty: every type
    version: int
    kind: str = POLICY


def publish(*, instance_id: int, subject_ids: Iterable[int] | None, resource_types: Iterable[str],
            version: int, kind: str = POLICY) -> None:
    subjects = ALL_SUBJECTS if subject_ids is None else ",".join(str(s) for s in sorted(set(subject_ids)))
    fields: dict[str, object] = {"i": instance_id, "s": subjects, "t": ",".join(sorted(set(resource_types))),
                                 "v": version}
    if kind != POLICY:
        fields["k"] = kind
    try:
        client().xadd(STREAM, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
    except redis.RedisError:
        # Watchers that cannot read the feed stop serving from memory after one second, so a lost
        # write here is the one case the bound does not cover; it is logged loudly.
        logger.exception("authz change %s for instance %s not written to the change feed", version, instance_id)


def decode(fields: dict[bytes, bytes]) -> Change:
    subjects = fields.get(b"s", b"*").decode()
    types = fields.get(b"t", b"").decode()
    return Change(
        instance_id=int(fields[b"i"]),
        subject_ids=None if subjects == ALL_SUBJECTS else frozenset(int(s) for s in subjects.split(",") if s),
        resource_types=frozenset(t for t in types.split(",") if t),
        version=int(fields.get(b"v", b"0")),
        kind=fields.get(b"k", b"policy").decode(),
    )


def publish_on_commit(*, kind: str, instance_id: int, subject_ids: Iterable[int] | None = None) -> None:
    """Append a ``member``, ``instance`` or ``key`` change to the feed once the current transaction commits
    (at once outside one). For writes outside ``authz.services``: model signals and services of other apps."""
    from django.db import transaction

    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    subjects = None if subject_ids is None else sorted(set(subject_ids))
    transaction.on_commit(lambda: publish(instance_id=instance_id, subject_ids=subjects, resource_types=(),
                                          version=0, kind=kind))

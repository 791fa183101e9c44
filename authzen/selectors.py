"""Reads of the AuthZEN app: subjects named from outside, service clients and keys, types, objects."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import Instance, Profile
from authz import changefeed
from authz.cache import memory_ok, watcher
from authzen.error_codes import AuthzenErrorCode as Code
from authzen.models import Policy, ResourceObject, ResourceType, ServiceClient, ServiceKey, SubjectProperties
from saaskit.errors import NotFoundError

_MISSING = object()


def _as_pk(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 and not value.startswith("0") else None


class SubjectNames:
    """Per process: (instance id, subject id as sent) -> user id of the member it names, or None (unknown:
    negative entries too, so a PEP asking about strangers costs no query either).

    Entries are trusted until the authz change feed says a member or the instance changed (the watcher of
    ``authz.cache`` calls ``on_change``; accounts publishes profile creations, deletions, role and external-id
    changes, email changes and instance saves), and only while that watcher is in sync (``memory_ok``, the
    cache's staleness rule); otherwise every call asks PostgreSQL. Bounded: at most ``max_per_instance``
    names per instance, the oldest dropped first."""

    def __init__(self, max_per_instance: int = 50_000) -> None:
        self.max_per_instance = max_per_instance
        self.by_instance: dict[int, dict[str, int | None]] = {}
        self.hits = 0
        self.misses = 0

    def on_change(self, change: changefeed.Change) -> None:
        if change.kind in (changefeed.MEMBER, changefeed.INSTANCE):
            self.by_instance.pop(change.instance_id, None)

    def on_clear(self) -> None:
        self.by_instance.clear()

    def counts(self) -> dict[str, int]:
        return {"subject_hits": self.hits, "subject_misses": self.misses}

    def store(self, instance_id: int, subject_id: str, user_id: int | None, generation: int) -> None:
        with watcher.lock:
            if watcher.generation != generation:  # a change was applied while we read: do not keep
                return
            names = self.by_instance.setdefault(instance_id, {})
            while len(names) >= self.max_per_instance:
                del names[next(iter(names))]
            names[subject_id] = user_id


subject_names = SubjectNames()
watcher.follow(subject_names)
_names_of = subject_names.by_instance.get


def _subject_query(instance_id: int, subject_id: str) -> int | None:
    match = Q(external_id=subject_id)
    pk = _as_pk(subject_id)
    if pk is not None:
        match |= Q(user_id=pk)
    if "@" in subject_id:
        match |= Q(user__email__iexact=subject_id)
    rows = list(Profile.objects.filter(match, instance_id=instance_id).values_list("user_id", "external_id")[:3])
    found = next((u for u, ext in rows if ext == subject_id), None)
    if found is None:
        found = next((u for u, _ in rows if u == pk), None) if pk is not None else None
    if found is None and rows:
        found = rows[0][0] if "@" in subject_id else None
    return found


def subject_resolve(*, instance_id: int, subject_id: str) -> int | None:
    """The user id of the member of the instance an AuthZEN ``user`` subject names, or None.

    A subject id is, in this order of precedence, a profile's ``external_id``, our user id, or the
    user's email (case-insensitive). Only members of the instance resolve. Warm: two dict lookups
    (``SubjectNames``); a miss is one query.
    """
    if memory_ok[0]:
        names = _names_of(instance_id)
        if names is not None:
            found = names.get(subject_id, _MISSING)
            if found is not _MISSING:
                subject_names.hits += 1
                return found  # type: ignore[return-value]
    subject_names.misses += 1
    watcher.ensure_started()
    generation = watcher.generation
    found = _subject_query(instance_id, subject_id)
    if memory_ok[0]:
        subject_names.store(instance_id, subject_id, found, generation)
    return found


def subject_cache_clear() -> None:
    with watcher.lock:
        subject_names.on_clear()


def subject_labels(*, instance_id: int, user_ids: list[int] | None = None) -> dict[int, str]:
    """How search results name members: their external id where set, else the user id."""
    qs = Profile.objects.filter(instance_id=instance_id)
    if user_ids is not None:
        qs = qs.filter(user_id__in=user_ids)
    return {uid: ext or str(uid) for uid, ext in qs.values_list("user_id", "external_id")}


def subject_properties(*, instance_id: int, user_ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    qs = SubjectProperties.objects.filter(instance_id=instance_id)
    if user_ids is not None:
        qs = qs.filter(user_id__in=user_ids)
    return dict(qs.values_list("user_id", "properties"))


# --- service clients --------------------------------------------------------------------------------
def service_client_list(*, instance: Instance) -> QuerySet[ServiceClient]:
    return ServiceClient.objects.for_instance(instance).prefetch_related("keys").order_by("pk")


def access_service_client_by_id(*, instance: Instance, client_id: object) -> ServiceClient:
    """The instance's service client, or the same 404 for missing, foreign and malformed ids."""
    pk = _as_pk(str(client_id))
    client = ServiceClient.objects.for_instance(instance).filter(pk=pk).first() if pk else None
    if client is None:
        raise NotFoundError("Service client not found.", code=Code.SERVICE_CLIENT_NOT_FOUND)
    return client


def access_service_key_by_prefix(*, client: ServiceClient, prefix: str) -> ServiceKey:
    key = ServiceKey.objects.filter(client=client, prefix=prefix).first()
    if key is None:
        raise NotFoundError("Service key not found.", code=Code.SERVICE_KEY_NOT_FOUND)
    return key


def service_key_lookup(*, key_hash: str) -> tuple[Any, ...] | None:
    """(key id, client id, client name, role, instance id, instance slug, expires_at) of a usable key
    whose instance is active, by hash; None otherwise. One query."""
    return (ServiceKey.objects.filter(key_hash=key_hash, revoked_at__isnull=True, client__instance__is_active=True)
            .values_list("pk", "client_id", "client__name", "client__role", "client__instance_id",
                         "client__instance__slug", "expires_at").first())


# --- types, objects, policies -----------------------------------------------------------------------
def resource_type_list(*, instance: Instance) -> QuerySet[ResourceType]:
    return ResourceType.objects.filter(instance=instance).order_by("name")


def access_resource_type_by_name(*, instance: Instance, name: str) -> ResourceType:
    rtype = ResourceType.objects.filter(instance=instance, name=name).first()
    if rtype is None:
        raise NotFoundError("Resource type not found.", code=Code.RESOURCE_TYPE_NOT_FOUND)
    return rtype


def resource_object_list(*, rtype: ResourceType) -> QuerySet[ResourceObject]:
    return ResourceObject.objects.filter(resource_type=rtype).order_by("object_id")


def policy_list(*, instance: Instance) -> QuerySet[Policy]:
    return Policy.objects.filter(instance=instance).select_related("resource_type").order_by("pk")


def access_policy_by_id(*, instance: Instance, policy_id: object) -> Policy:
    pk = _as_pk(str(policy_id))
    policy = Policy.objects.filter(instance=instance, pk=pk).first() if pk else None
    if policy is None:
        raise NotFoundError("Policy not found.", code=Code.POLICY_NOT_FOUND)
    return policy

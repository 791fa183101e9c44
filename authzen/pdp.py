"""The decision point: AuthZEN evaluations and searches over authz (built-in types) and this app's
conditional policies (instance-defined types).

Built-in types (orders, products, wallets, resources) are answered by authz exactly as its check APIs
answer them: the process cache (``AuthzCache.allowed_for_subject``: the subject's profile role plus
direct, ``*``, group and folder policies) for a decision, authz's selectors for searches. Properties do
not change those answers: authz's policies carry no conditions.

An instance-defined type is answered by this app's policies: one query finds those naming the subject
(or ``*``), the action and the object (or ``*``); an unconditional one decides at once, otherwise the
stored properties of the subject and the object are loaded (one query each), the request's properties
laid over them, and the conditions evaluated in memory (``authzen.conditions``). Evaluations read these
through ``authzen.index`` (per process, at most a second old: a warm evaluation makes no query); searches
read the database. A policy on ``*``
covers the objects registered for the type (so an unknown id is denied and searches stay finite); a
policy naming an id covers that id, registered or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import Q

from accounts.models import Instance, Profile
from authz import selectors as authz_selectors
from authz.cache import default_cache
from authz.registry import WILDCARD, get_type
from authz.role_grants import role_allows
from authzen import index, selectors
from authzen.conditions import condition_holds
from authzen.models import Policy, ResourceObject
from authzen.protocol import Action, Entity, Evaluation, RequestError

USER = "user"
Row = index.Row


@dataclass(frozen=True, slots=True)
class Decision:
    decision: bool
    reason: str | None = None  # why a deny happened, for the response context (None: no context)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": self.decision}
        if self.reason is not None:
            body["context"] = {"reason": self.reason}
        return body


def _activation(subject: Entity, subject_props: dict[str, Any], action: Action | None,
                resource: Entity, resource_props: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """What a condition sees: stored properties with the request's laid over them (key by key)."""
    return {
        "subject": {"type": subject.type, "id": subject.id or "", "properties": {**subject_props,
                                                                                  **subject.properties}},
        "resource": {"type": resource.type, "id": resource.id or "",
                     "properties": {**resource_props, **resource.properties}},
        "action": {"name": action.name if action else "", "properties": action.properties if action else {}},
        "context": context,
    }


def _rows(instance_id: int, type_name: str, *, action: str | None = None, user_id: int | None = None,
          any_user: bool = False, resource_id: str | None = None) -> list[Row]:
    """This app's policies on an instance-defined type, narrowed by the policy indexes."""
    qs = Policy.objects.filter(instance_id=instance_id, resource_type__name=type_name)
    if action is not None:
        qs = qs.filter(action=action)
    if not any_user:
        qs = qs.filter(Q(user_id=user_id) | Q(user__isnull=True))
    if resource_id is not None:
        qs = qs.filter(resource_id__in=[resource_id, WILDCARD])
    return list(qs.values_list("user_id", "action", "resource_id", "condition"))


def _object_properties(instance_id: int, type_name: str, object_ids: Iterable[str] | None,
                       ) -> dict[str, dict[str, Any]]:
    qs = ResourceObject.objects.filter(instance_id=instance_id, resource_type__name=type_name)
    if object_ids is not None:
        qs = qs.filter(object_id__in=list(object_ids))
    return dict(qs.values_list("object_id", "properties"))


def _any_holds(rows: Iterable[Row], activation: dict[str, Any]) -> bool:
    return any(condition_holds(row[3], activation) for row in rows)


# --- evaluation -----------------------------------------------------------------------------------
def evaluate(*, instance: Instance, evaluation: Evaluation) -> Decision:
    """One AuthZEN decision. Unknown subjects, types and actions are denied, never an error."""
    subject, action, resource = evaluation.subject, evaluation.action, evaluation.resource
    if subject.type != USER:
        return Decision(False, f"unknown subject type {subject.type!r}")
    user_id = selectors.subject_resolve(instance_id=instance.pk, subject_id=subject.id or "")
    if user_id is None:
        return Decision(False, "unknown subject")
    builtin = get_type(resource.type)
    if builtin is not None:
        if action.name not in builtin.actions:
            return Decision(False, f"{resource.type} has no action {action.name!r}")
        allowed = default_cache().allowed_for_subject(instance.pk, user_id, action.name, resource.type,
                                                      resource.id)
        return Decision(allowed)
    by_key = index.subject_rows(instance.pk, resource.type, user_id)
    object_id = resource.id or ""
    rows = by_key.get((action.name, object_id), [])
    wildcard = by_key.get((action.name, WILDCARD), [])
    object_props = index.object_properties(instance.pk, resource.type, object_id) if wildcard else None
    if object_props is not None:  # ``*`` covers the registered objects only
        rows = rows + wildcard
    if not rows:
        return Decision(False)
    if any(not row[3] for row in rows):
        return Decision(True)
    if object_props is None:
        object_props = index.object_properties(instance.pk, resource.type, object_id) or {}
    activation = _activation(subject, index.subject_properties(instance.pk, user_id), action, resource,
                             object_props, evaluation.context)
    return Decision(_any_holds(rows, activation))


# --- searches -------------------------------------------------------------------------------------
def evaluate_batch(*, instance: Instance, items: list[Evaluation | RequestError], semantic: str,
                   ) -> list[dict[str, Any]]:
    """The ``evaluations`` of a batch under its ``evaluations_semantic``: a malformed item is a deny carrying its
    400 in ``context``; ``deny_on_first_deny`` stops at the first deny (giving it a reason if it has none),
    ``permit_on_first_permit`` at the first permit. One place for the Django view and the fast path."""
    results: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, RequestError):
            decision = {"decision": False, "context": {"error": {"status": 400, "message": item.message}}}
        else:
            decision = evaluate(instance=instance, evaluation=item).as_dict()
        results.append(decision)
        if semantic == "deny_on_first_deny" and not decision["decision"]:
            decision.setdefault("context", {"reason": "deny_on_first_deny"})
            break
        if semantic == "permit_on_first_permit" and decision["decision"]:
            break
    return results


def search_subjects(*, instance: Instance, subject_type: str, action: Action, resource: Entity,
                    context: dict[str, Any], subject_properties: dict[str, Any]) -> list[dict[str, str]]:
    """Members that may do ``action`` on the resource, named as a subject search names them (external id
    where set, else user id), ordered by user id."""
    if subject_type != USER:
        return []
    builtin = get_type(resource.type)
    if builtin is not None:
        if action.name not in builtin.actions:
            return []
        user_ids = list(authz_selectors.object_subjects(instance=instance, resource_type=resource.type,
                                                        resource_id=resource.id or "", action=action.name))
    else:
        rows = _rows(instance.pk, resource.type, action=action.name, any_user=True, resource_id=resource.id)
        registered = _object_properties(instance.pk, resource.type, [resource.id or ""]) if rows else {}
        if resource.id not in registered:  # ``*`` covers the registered objects only
            rows = [row for row in rows if row[2] != WILDCARD]
        if not rows:
            return []
        everyone = any(row[0] is None for row in rows)
        members = Profile.objects.filter(instance=instance)
        if not everyone:
            members = members.filter(user_id__in={row[0] for row in rows})
        candidates = sorted(members.values_list("user_id", flat=True))
        open_to_all = any(not row[3] and row[0] is None for row in rows)
        unconditional = {row[0] for row in rows if not row[3]}
        needs_props = set() if open_to_all else {uid for uid in candidates if uid not in unconditional}
        stored = (selectors.subject_properties(instance_id=instance.pk, user_ids=sorted(needs_props))
                  if needs_props else {})
        object_props = registered.get(resource.id or "", {})
        user_ids = []
        for uid in candidates:
            applicable = [row for row in rows if row[0] in (uid, None)]
            if uid not in needs_props:
                user_ids.append(uid)
                continue
            subject = Entity(USER, str(uid), subject_properties)
            if _any_holds(applicable, _activation(subject, stored.get(uid, {}), action, resource, object_props,
                                                  context)):
                user_ids.append(uid)
    labels = selectors.subject_labels(instance_id=instance.pk, user_ids=user_ids)
    return [{"type": USER, "id": labels[uid]} for uid in user_ids if uid in labels]


def _builtin_object_ids(instance_id: int, type_name: str) -> list[str]:
    rtype = get_type(type_name)
    if rtype is None or rtype.model_label is None:
        return []
    model = apps.get_model(rtype.model_label)
    return [str(pk) for pk in model.objects.filter(instance_id=instance_id).order_by("pk").values_list("pk",
                                                                                                      flat=True)]


def search_resources(*, instance: Instance, subject: Entity, action: Action, resource_type: str,
                     resource_properties: dict[str, Any], context: dict[str, Any]) -> list[dict[str, str]]:
    """Objects of ``resource_type`` the subject may do ``action`` on, ordered by id."""
    if subject.type != USER:
        return []
    user_id = selectors.subject_resolve(instance_id=instance.pk, subject_id=subject.id or "")
    if user_id is None:
        return []
    builtin = get_type(resource_type)
    if builtin is not None:
        if action.name not in builtin.actions:
            return []
        role, grants = authz_selectors.subject_role_and_grants(instance_id=instance.pk, user_id=user_id,
                                                               resource_types=[resource_type])
        if role is None:
            return []
        ids = {rid for rtype, act, rid in grants if rtype == resource_type and act == action.name}
        if WILDCARD in ids or role_allows(role, action.name, resource_type):
            ids = (ids - {WILDCARD}) | set(_builtin_object_ids(instance.pk, resource_type))
        found = sorted(ids, key=lambda x: (len(x), x) if x.isdigit() else (1 << 30, x))
        return [{"type": resource_type, "id": rid} for rid in found]
    rows = _rows(instance.pk, resource_type, action=action.name, user_id=user_id)
    if not rows:
        return []
    everything = any(row[2] == WILDCARD for row in rows)  # ``*`` covers the registered objects only
    registered = _object_properties(instance.pk, resource_type,
                                    None if everything else {row[2] for row in rows})
    candidates = set(registered) | {row[2] for row in rows if row[2] != WILDCARD}
    stored_subject: dict[str, Any] | None = None
    found_ids = []
    for object_id in sorted(candidates):
        applicable = [row for row in rows
                      if row[2] == object_id or (row[2] == WILDCARD and object_id in registered)]
        if any(not row[3] for row in applicable):
            found_ids.append(object_id)
            continue
        if stored_subject is None:
            stored_subject = selectors.subject_properties(instance_id=instance.pk, user_ids=[user_id]).get(user_id, {})
        target = Entity(resource_type, object_id, resource_properties)
        if _any_holds(applicable, _activation(subject, stored_subject, action, target,
                                              registered.get(object_id, {}), context)):
            found_ids.append(object_id)
    return [{"type": resource_type, "id": oid} for oid in found_ids]


def search_actions(*, instance: Instance, subject: Entity, resource: Entity,
                   context: dict[str, Any]) -> list[dict[str, str]]:
    """Actions of the resource's type the subject may perform on it (no action properties: the
    request has no action), ordered by name."""
    if subject.type != USER:
        return []
    user_id = selectors.subject_resolve(instance_id=instance.pk, subject_id=subject.id or "")
    if user_id is None:
        return []
    builtin = get_type(resource.type)
    if builtin is not None:
        cache = default_cache()
        return [{"name": name} for name in sorted(builtin.actions)
                if cache.allowed_for_subject(instance.pk, user_id, name, resource.type, resource.id)]
    actions = index.type_actions(instance.pk, resource.type)
    if not actions:
        return []
    by_key = index.subject_rows(instance.pk, resource.type, user_id)
    object_id = resource.id or ""
    object_props = index.object_properties(instance.pk, resource.type, object_id)
    activation: dict[str, Any] | None = None
    allowed = []
    for name in sorted(actions):
        applicable = by_key.get((name, object_id), []) + (by_key.get((name, WILDCARD), [])
                                                          if object_props is not None else [])
        if not applicable:
            continue
        if any(not row[3] for row in applicable):
            allowed.append(name)
            continue
        if activation is None:
            activation = _activation(subject, index.subject_properties(instance.pk, user_id), None, resource,
                                     object_props or {}, context)
        activation["action"] = {"name": name, "properties": {}}
        if _any_holds(applicable, activation):
            allowed.append(name)
    return [{"name": name} for name in allowed]

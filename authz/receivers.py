"""Deleting a domain object removes the policies naming it (guardian leaves orphans; we don't); and every
change of a member or an instance is published into the change feed (``_member_changed`` & co.).

The publishers only publish: a profile created, deleted or saved with a new role or external id, a user's
email changed, an instance saved (deactivated, reactivated) or deleted appends a ``member`` or ``instance``
entry after commit, so every process's authz cache drops the subject (its profile role is cached with its
grants) and AuthZEN's subject names and service keys forget what the change touched. Model signals catch
every write path that saves models (services, the admin, the console, commands, ``update_or_create``);
``QuerySet.update()`` and ``bulk_create`` send none, so code that changes roles, external ids or
``is_active`` that way must call ``authz.changefeed.publish_on_commit`` itself (none does today).

``_purge`` is the one receiver in authz that does work rather than publish: the objects belong to other apps,
which must not import authz's services (dependency direction), and ``post_delete`` is sent for every row
of ``QuerySet.delete()`` too (Django collects rows when a receiver is connected). Raw SQL deletes bypass
it; ``manage.py authz_purge_orphans`` is not provided yet (see the report).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models.signals import post_delete

from authz import changefeed
from authz.registry import RESOURCE_TYPES

# Profile fields a decision or a subject's name depends on: a save touching none of them publishes nothing.
_PROFILE_FIELDS = frozenset({"role", "external_id", "user", "user_id", "instance", "instance_id"})


def _purge(sender: Any, instance: Any, **kwargs: Any) -> None:
    from authz.registry import type_for_model
    from authz.services import policies_purge_object

    rtype = type_for_model(sender)
    if rtype is not None:
        policies_purge_object(resource_type=rtype, resource_id=str(instance.pk),
                              instance_id=getattr(instance, "instance_id", None))


def _profile_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and not (set(update_fields) & _PROFILE_FIELDS):
        return
    changefeed.publish_on_commit(kind=changefeed.MEMBER, instance_id=instance.instance_id,
                                 subject_ids=[instance.user_id])


def _profile_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    changefeed.publish_on_commit(kind=changefeed.MEMBER, instance_id=instance.instance_id,
                                 subject_ids=[instance.user_id])


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    """A user's email names them as an AuthZEN subject: a save that may change it republishes their
    memberships (a login's ``last_login`` save does not)."""
    if created or (update_fields is not None and "email" not in update_fields):
        return
    from accounts.models import Profile

    for instance_id in Profile.objects.filter(user_id=instance.pk).values_list("instance_id", flat=True):
        changefeed.publish_on_commit(kind=changefeed.MEMBER, instance_id=instance_id, subject_ids=[instance.pk])


def _instance_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    if not created:
        changefeed.publish_on_commit(kind=changefeed.INSTANCE, instance_id=instance.pk)


def connect() -> None:
    from django.db.models.signals import post_save

    from accounts.models import Instance, Profile, User

    post_save.connect(_profile_saved, sender=Profile, dispatch_uid="authz.feed.profile_saved")
    post_delete.connect(_profile_deleted, sender=Profile, dispatch_uid="authz.feed.profile_deleted")
    post_save.connect(_user_saved, sender=User, dispatch_uid="authz.feed.user_saved")
    post_save.connect(_instance_changed, sender=Instance, dispatch_uid="authz.feed.instance_saved")
    post_delete.connect(_instance_changed, sender=Instance, dispatch_uid="authz.feed.instance_deleted")
    for rtype in RESOURCE_TYPES.values():
        if not rtype.model_label or rtype.model_label == "authz.Resource":  # authz deletes those itself
            continue
        try:
            model = apps.get_model(rtype.model_label)
        except LookupError:
            continue
        post_delete.connect(_purge, sender=model, dispatch_uid=f"authz.purge.{rtype.name}")

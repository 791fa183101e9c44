"""Deleting a domain object removes the policies naming it (guardian leaves orphans; we don't).

This is the one receiver in authz that does work rather than publish: the objects belong to other apps,
which must not import authz's services (dependency direction), and ``post_delete`` is sent for every row
of ``QuerySet.delete()`` too (Django collects rows when a receiver is connected). Raw SQL deletes bypass
it; ``manage.py authz_purge_orphans`` is not provided yet (see the report).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models.signals import post_delete

from authz.registry import RESOURCE_TYPES


def _purge(sender: Any, instance: Any, **kwargs: Any) -> None:
    from authz.registry import type_for_model
    from authz.services import policies_purge_object

    rtype = type_for_model(sender)
    if rtype is not None:
        policies_purge_object(resource_type=rtype, resource_id=str(instance.pk),
                              instance_id=getattr(instance, "instance_id", None))


def connect() -> None:
    for rtype in RESOURCE_TYPES.values():
        if not rtype.model_label or rtype.model_label == "authz.Resource":  # authz deletes those itself
            continue
        try:
            model = apps.get_model(rtype.model_label)
        except LookupError:
            continue
        post_delete.connect(_purge, sender=model, dispatch_uid=f"authz.purge.{rtype.name}")

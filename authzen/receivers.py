"""Publishers only: a service client or key created, saved or deleted appends a ``key`` change to the authz
change feed after commit, so every process's key cache (``authzen.authentication.ServiceKeys``) forgets it
within a second. Revocations are ``QuerySet.update()`` calls (no signal): ``services.service_key_revoke``
and the certification fixture publish those themselves."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from authz import changefeed


def _client_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    changefeed.publish_on_commit(kind=changefeed.KEY, instance_id=instance.instance_id)


def _key_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    from authzen.models import ServiceClient

    client = ServiceClient.objects.filter(pk=instance.client_id).values_list("instance_id", flat=True).first()
    changefeed.publish_on_commit(kind=changefeed.KEY, instance_id=client or 0)


def connect() -> None:
    from authzen.models import ServiceClient, ServiceKey

    post_save.connect(_client_changed, sender=ServiceClient, dispatch_uid="authzen.feed.client_saved")
    post_delete.connect(_client_changed, sender=ServiceClient, dispatch_uid="authzen.feed.client_deleted")
    post_save.connect(_key_changed, sender=ServiceKey, dispatch_uid="authzen.feed.key_saved")
    post_delete.connect(_key_changed, sender=ServiceKey, dispatch_uid="authzen.feed.key_deleted")

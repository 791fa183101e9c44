"""The fixture of the OpenID AuthZEN certification scenario (authorization-api-1_0-scenario, section
"Required Fixture"), created idempotently in the instance ``authzen-cert``.

Subjects ``alice`` and ``bob`` are members (customers) with those external ids; bob's stored properties
say ``role: admin``. The type ``record`` has ``read``, ``write``, ``delete``; ``record-1`` is active and
``record-2`` archived. The policies give exactly the scenario's eight decisions and six search results:

- everyone reads every record;
- alice writes records that are not archived;
- a subject whose role is admin writes archived records (the request's properties override stored ones);
- alice deletes records softly only (``action.properties.soft == true``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import Instance, Profile, User
from authz import changefeed
from authzen.models import ResourceType, ServiceClient, ServiceKey
from authzen.services import (
    policy_create,
    resource_object_upsert,
    resource_type_create,
    service_key_create,
    subject_properties_set,
)

SLUG = "authzen-cert"
CLIENT_NAME = "certification-harness"
NOT_ARCHIVED = '!has(resource.properties.status) || resource.properties.status != "archived"'
ADMIN_ON_ARCHIVED = ('has(subject.properties.role) && subject.properties.role == "admin" '
                     '&& has(resource.properties.status) && resource.properties.status == "archived"')
SOFT_ONLY = "has(action.properties.soft) && action.properties.soft == true"


@dataclass(frozen=True)
class Fixture:
    instance: Instance
    token: str


@transaction.atomic
def certification_fixture() -> Fixture:
    """Create (or complete) the fixture and issue a fresh key for the harness's service client; earlier
    keys of that client are revoked, so at most one works at a time."""
    instance, _ = Instance.objects.get_or_create(slug=SLUG, defaults={"name": "AuthZEN certification"})
    users = {}
    for name in ("alice", "bob"):
        user = User.objects.filter(email=f"{name}@{SLUG}.invalid").first()
        if user is None:
            user = User.objects.create_user(f"{name}@{SLUG}.invalid", None, name=name.title())
        Profile.objects.update_or_create(user=user, instance=instance,
                                         defaults={"role": "customer", "external_id": name})
        users[name] = user
    subject_properties_set(instance=instance, user_id=users["bob"].pk, properties={"role": "admin"})
    rtype = ResourceType.objects.filter(instance=instance, name="record").first()
    if rtype is None:
        rtype = resource_type_create(instance=instance, name="record", actions=["read", "write", "delete"])
    resource_object_upsert(rtype=rtype, object_id="record-1", properties={"status": "active"})
    resource_object_upsert(rtype=rtype, object_id="record-2", properties={"status": "archived"})
    alice = str(users["alice"].pk)
    policy_create(instance=instance, subject="*", rtype=rtype, action="read")
    policy_create(instance=instance, subject=alice, rtype=rtype, action="write", condition=NOT_ARCHIVED)
    policy_create(instance=instance, subject="*", rtype=rtype, action="write", condition=ADMIN_ON_ARCHIVED)
    policy_create(instance=instance, subject=alice, rtype=rtype, action="delete", condition=SOFT_ONLY)
    client, _ = ServiceClient.objects.get_or_create(instance=instance, name=CLIENT_NAME,
                                                    defaults={"role": "customer"})

    if ServiceKey.objects.filter(client=client, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        changefeed.publish_on_commit(kind=changefeed.KEY, instance_id=instance.pk)
    _, token = service_key_create(client=client)
    return Fixture(instance=instance, token=token)

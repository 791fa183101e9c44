"""AuthZEN storage: service clients and their keys, instance-defined resource types with registered
objects, stored subject properties, and conditional policies.

Why here and not in authz: authz's ``Policy`` is the unconditional check index that its cache, its
``authz_check`` SQL function and the check APIs read; a condition or a ``*`` subject there would change
what every existing check answers (and slow its warm path). AuthZEN needs more (types defined at run
time, stored properties, CEL conditions) and sits above accounts and authz, so it keeps its own rows and
asks authz for the built-in types. An AuthZEN decision is authz's answer (built-in types) or, for an
instance-defined type, whether any of these policies matches.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Instance


class ServiceClientQuerySet(models.QuerySet["ServiceClient"]):
    def for_instance(self, instance: Instance | int) -> ServiceClientQuerySet:
        return self.filter(instance=instance)


class ServiceClient(models.Model):
    """A policy enforcement point (a gateway, another service) acting in one instance with one role."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="service_clients")
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ServiceClientQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="authzen_client_instance_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class ServiceKey(models.Model):
    """One API key of a service client. Only a SHA-256 of the key is stored; ``prefix`` (its first
    characters) is what people see. Revoked or expired keys stop working within a second."""

    client = models.ForeignKey(ServiceClient, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}…"


class ResourceType(models.Model):
    """A resource type an instance admin defined (``record`` with ``read``, ``write``, ``delete``)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="authzen_types")
    name = models.CharField(max_length=32)
    actions = models.JSONField(default=list)  # sorted list of action names
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="authzen_type_instance_name")]

    def __str__(self) -> str:
        return self.name


class ResourceObject(models.Model):
    """A registered object of an instance-defined type, with stored properties (conditions see them,
    overridden by the request's; resource search expands ``*`` policies over these)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="authzen_objects")
    resource_type = models.ForeignKey(ResourceType, on_delete=models.CASCADE, related_name="registered_objects")
    object_id = models.CharField(max_length=255)
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["resource_type", "object_id"], name="authzen_object_type_id")]

    def __str__(self) -> str:
        return f"{self.resource_type_id}:{self.object_id}"


class SubjectProperties(models.Model):
    """Stored properties of a member as an AuthZEN subject (overridden by the request's)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "user"], name="authzen_subject_props_unique")]
        verbose_name_plural = "subject properties"


class Policy(models.Model):
    """``subject`` may ``action`` objects of an instance-defined type when ``condition`` (CEL) holds.

    ``user`` NULL is the subject ``*`` (every member of the instance); ``resource_id`` ``*`` is every
    object of the type. An empty condition always holds.
    """

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="authzen_policies")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="authzen_policies")
    resource_type = models.ForeignKey(ResourceType, on_delete=models.CASCADE, related_name="policies")
    action = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=255, default="*")
    condition = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "policies"
        indexes = [models.Index(fields=["resource_type", "action", "resource_id"], name="authzen_policy_object"),
                   models.Index(fields=["resource_type", "user", "action"], name="authzen_policy_subject")]
        constraints = [models.UniqueConstraint(fields=["resource_type", "user", "action", "resource_id",
                                                       "condition"], nulls_distinct=False,
                                               name="authzen_policy_unique")]

    def __str__(self) -> str:
        subject = "*" if self.user_id is None else str(self.user_id)
        text = f"{subject}:{self.action}:{self.resource_type}:{self.resource_id}"
        return f"{text} if {self.condition}" if self.condition else text

"""The audit log: one row per change that touches access or money, written by ``audit.services.audit_record``.

The instance is a snapshot (id and slug, no foreign key) so deleting an instance never deletes its audit rows;
the actor is a nullable foreign key (SET_NULL) with the email kept beside it for the same reason.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit.choices import AuditAction


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def for_instance_ids(self, instance_ids: frozenset[int] | set[int] | list[int]) -> AuditEntryQuerySet:
        return self.filter(instance_id__in=list(instance_ids))


class AuditEntry(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    actor_email = models.CharField(max_length=254, blank=True, default="",
                                   help_text="the actor's email when the entry was written")
    instance_id = models.BigIntegerField(null=True, blank=True,
                                         help_text="not a foreign key: entries outlive instances")
    instance_slug = models.CharField(max_length=63, blank=True, default="")
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target_type = models.CharField(max_length=100, blank=True, default="", help_text="app_label.model")
    target_id = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True, default="")
    address = models.GenericIPAddressField(null=True, blank=True)
    origin = models.CharField(max_length=16, default="command", help_text="request, command or worker")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["instance_id", "-created_at"], name="audit_instance_time"),
            models.Index(fields=["action", "-created_at"], name="audit_action_time"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        who = self.actor_email or "system"
        return f"{self.get_action_display()} by {who} on {self.target_type}:{self.target_id}"

"""The outbox (the event log) and one delivery row per (event, consumer).

``Delivery`` is also the idempotency record: a consumer runs inside the transaction that locks its delivery row
and marks it done, so its effects, the events it publishes and ``done`` commit together or not at all.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from events.choices import DeliveryStatus


class OutboxEvent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()
    instance_id = models.BigIntegerField(null=True, blank=True)
    instance_slug = models.CharField(max_length=63, null=True, blank=True)
    correlation_id = models.CharField(max_length=64)
    causation_id = models.CharField(max_length=64, null=True, blank=True)
    payload = models.JSONField()

    class Meta:
        ordering = ["occurred_at"]
        indexes = [
            models.Index(fields=["occurred_at"], name="events_outbox_occurred"),
            models.Index(fields=["name", "occurred_at"], name="events_outbox_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.id}"


class Delivery(models.Model):
    # No index of its own: the unique (event, consumer) index below serves lookups by event, and a second one cost
    # every publish and every finish (a non-HOT update: status is indexed) one more random B-tree insert.
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    consumer = models.CharField(max_length=200)
    queue = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    failures = models.PositiveIntegerField(default=0, help_text="failed attempts (NotReady does not count)")
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="when a message was last handed to the broker")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(
        null=True, blank=True, help_text="when the successful run marked it done (with the consumer's effects)")
    running_since = models.DateTimeField(
        null=True, blank=True,
        help_text="when the current run from the event log began (cleared when it ends; found set by the next run, "
                  "it counts as a failed attempt: the run died)")
    park_event = models.CharField(max_length=100, blank=True, db_default="",
                                  help_text="parked: the event it waits for in its correlation (* any)")
    park_correlation = models.CharField(max_length=64, blank=True, db_default="",
                                        help_text="parked: the correlation id of what it waits for")
    parked_at = models.DateTimeField(
        null=True, blank=True, help_text="when it was first parked (dead-lettered after EVENTS_PARK_MAX_SECONDS)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "consumer"], name="events_delivery_once_per_consumer")]
        indexes = [
            models.Index(fields=["status", "sent_at"], name="events_delivery_open",
                         condition=~Q(status=DeliveryStatus.DONE)),
            models.Index(fields=["park_correlation", "park_event"], name="events_delivery_parked",
                         condition=Q(status=DeliveryStatus.PARKED)),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.consumer} <- {self.event_id} ({self.status})"


class RejectedMessage(models.Model):
    """A broker message the bus could not even attribute to a delivery (garbage arguments): kept, never crashes."""

    task_name = models.CharField(max_length=200)
    body = models.TextField()
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.task_name}: {self.reason[:60]}"

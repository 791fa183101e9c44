from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from events import services
from events.catalogue import CATALOGUE
from events.choices import DeliveryStatus
from events.consumers import all_subscriptions
from events.models import Delivery, OutboxEvent, RejectedMessage


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def filter_with_choices_from_code(field: str, choices: Callable[[], list[str]]) -> type[admin.SimpleListFilter]:
    """A list filter on ``field`` whose choices come from the code (catalogue, registered consumers), not from a
    DISTINCT scan of an event log that only grows."""

    class ChoicesFromCodeFilter(admin.SimpleListFilter):
        title = parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(value, value) for value in choices()]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    ChoicesFromCodeFilter.__name__ = f"{field.title()}Filter"
    return ChoicesFromCodeFilter


EventNameFilter = filter_with_choices_from_code("name", lambda: [spec.name for spec in CATALOGUE])
ConsumerFilter = filter_with_choices_from_code("consumer", lambda: sorted({s.name for s in all_subscriptions()}))
QueueFilter = filter_with_choices_from_code("queue", lambda: sorted({s.queue for s in all_subscriptions()}))


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["consumer", "queue", "status", "failures", "last_error", "sent_at", "done_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "version", "instance_slug", "occurred_at", "correlation_id"]
    list_filter = [EventNameFilter]
    search_fields = ["id", "correlation_id", "causation_id"]
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "consumer", "queue", "status", "failures", "event", "sent_at", "done_at"]
    list_filter = ["status", QueueFilter, ConsumerFilter]
    search_fields = ["event__id", "consumer"]
    actions = ["retry_dead"]

    @admin.action(description="Re-deliver selected dead-lettered deliveries")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.filter(status=DeliveryStatus.DEAD).values_list("id", flat=True))
        count = services.deliveries_retry(delivery_ids=ids, actor=request.user)
        self.message_user(request, f"Re-delivered {count} deliveries.", messages.SUCCESS)


@admin.register(RejectedMessage)
class RejectedMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "task_name", "reason", "created_at"]

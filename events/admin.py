from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from events import selectors, services
from events.catalogue import CATALOGUE
from events.choices import DeliveryStatus
from events.consumers import all_subscriptions, subscriptions_for
from events.models import Delivery, OutboxEvent, RejectedMessage


class ReplayForm(forms.Form):
    consumer = forms.ChoiceField(required=False, help_text="empty: every current subscriber of each event")

    def __init__(self, *args: Any, consumers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consumer"].choices = [("", "every subscriber"), *((c, c) for c in consumers)]


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
    actions = ["replay_to_consumer"]

    @admin.action(description="Replay selected events to a consumer")
    def replay_to_consumer(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> HttpResponse | None:
        """Through ``events_replay_to_consumer``: a missing delivery (a consumer added later) is created and
        sent; an unfinished one is sent again; a done one is a no-op (its idempotency record); a dead one is
        left to "retry"."""
        names = sorted(set(queryset.values_list("name", flat=True)))
        consumers = sorted({sub.name for name in names for sub in subscriptions_for(name)})
        form = ReplayForm(request.POST if "apply" in request.POST else None, consumers=consumers)
        if form.is_valid():
            consumer = form.cleaned_data["consumer"] or None
            result = services.events_replay_to_consumer(event_ids=list(queryset.values_list("id", flat=True)),
                                                        consumer=consumer)
            self.message_user(request, f"Replayed {result.events} event(s) to {consumer or 'every subscriber'}: "
                              f"{result.created} delivery(ies) created, {result.sent} sent.", messages.SUCCESS)
            return None
        context: dict[str, Any] = {
            **self.admin_site.each_context(request), "form": form, "queryset": queryset, "opts": self.model._meta,
            "action": "replay_to_consumer", "title": "Replay to a consumer",
            "intro": "Deliver these events again (done deliveries stay done; dead ones are retried from the "
                     "deliveries list):"}
        return TemplateResponse(request, "admin/action_form.html", context)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "consumer", "queue", "status", "failures", "event", "sent_at", "done_at"]
    list_filter = ["status", QueueFilter, ConsumerFilter]
    search_fields = ["event__id", "consumer"]
    actions = ["retry_dead", "replay_to_consumer"]

    change_list_template = "admin/events/delivery/change_list.html"

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # ?event__instance_id=<id>: the dashboard's link to one instance's deliveries (no filter listing instances).
        return lookup == "event__instance_id" or super().lookup_allowed(lookup, value, request)

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return [*super().get_list_display(request), "reason"]

    @admin.display(description="reason")
    def reason(self, delivery: Delivery) -> str:
        return delivery.last_error[:120]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The list under a summary: unfinished deliveries per status (each a link to its filtered list) and,
        for dead letters and parked deliveries, why (consumer and error, most frequent first)."""
        url = reverse("admin:events_delivery_changelist")
        counts = selectors.delivery_unfinished_counts()
        extra_context = {
            **(extra_context or {}),
            "bus_counts": [(status, DeliveryStatus(status).label, counts[status], f"{url}?status__exact={status}")
                           for status in counts],
            "bus_reasons": [(status, DeliveryStatus(status).label, selectors.delivery_reasons(status=status))
                            for status in (DeliveryStatus.DEAD, DeliveryStatus.PARKED)],
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description="Replay selected deliveries to their consumer")
    def replay_to_consumer(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        created = sent = 0
        pairs = sorted(set(queryset.values_list("consumer", "event_id")))
        for consumer in sorted({c for c, _ in pairs}):
            result = services.events_replay_to_consumer(
                event_ids=[event_id for c, event_id in pairs if c == consumer], consumer=consumer)
            created, sent = created + result.created, sent + result.sent
        self.message_user(request, f"Replayed {len(pairs)} delivery(ies): {created} created, {sent} sent (done ones "
                          "stay done, dead ones need \"retry\").", messages.SUCCESS)

    @admin.action(description="Re-deliver selected dead-lettered deliveries")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.filter(status=DeliveryStatus.DEAD).values_list("id", flat=True))
        count = services.deliveries_retry(delivery_ids=ids, actor=request.user)
        self.message_user(request, f"Re-delivered {count} deliveries.", messages.SUCCESS)


@admin.register(RejectedMessage)
class RejectedMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "task_name", "reason", "created_at"]

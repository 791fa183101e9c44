from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from events.admin import filter_with_choices_from_code
from inventory.models import Product
from orders.choices import CancelReason, OrderStatus
from orders.models import DeadLetter, Order, OrderEvent, OrderLine
from orders.services import order_cancel_by_operator
from saaskit.errors import ApplicationError

ReasonFilter = filter_with_choices_from_code("reason", lambda: list(CancelReason.values))


class CancelForm(forms.Form):
    note = forms.CharField(max_length=200, help_text="why: kept on the order's timeline and in the audit log")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("product", "product_id", "quantity", "unit_price")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        # The product's name in the same query (a line keeps the product's id only: inventory owns products).
        name = Product.objects.filter(pk=OuterRef("product_id")).values("name")[:1]
        return super().get_queryset(request).annotate(product_name=Subquery(name))

    @admin.display(description="product")
    def product(self, line: OrderLine) -> str:
        return getattr(line, "product_name", None) or "(deleted product)"

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "detail", "causation_id", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only: orders change state only through the saga's services."""

    list_display = ("id", "instance", "customer", "status", "total", "currency", "reason", "needs_attention",
                    "attention_reason", "created_at")
    # Instances: by search or ?instance=<id>. Reasons from the code; currencies from the newest orders
    # (console.admin_base.RecentValuesFieldListFilter): no DISTINCT over every order on each page.
    list_filter = ("needs_attention", "status", ReasonFilter, "currency")
    search_fields = ("id", "customer__email", "=instance__slug")
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [OrderLineInline, OrderEventInline]
    read_only_record = True  # console.admin_base: no Save buttons; changes go through actions
    actions = ["cancel"]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """A superuser, an instance admin (on their instances' orders: the list is scoped), or staff granted
        ``orders.change_order``."""
        from console.scoping import is_console_user

        return is_console_user(request.user) or request.user.has_perm("orders.change_order")

    @admin.action(description="Cancel the selected orders (operator; a note is required)", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        """Through ``order_cancel_by_operator`` (compensation as for any cancellation; audited)."""
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for order_id in queryset.order_by("pk").values_list("pk", flat=True):
                try:
                    order_cancel_by_operator(order_id=order_id, note=form.cleaned_data["note"], actor=request.user)
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"order {order_id}: {exc}", messages.ERROR)
            self.message_user(request, f"Canceled {done} order(s).", messages.SUCCESS if done else messages.WARNING)
            return None
        open_orders = queryset.filter(status__in=[OrderStatus.PENDING, OrderStatus.APPROVED])
        context: dict[str, Any] = {**self.admin_site.each_context(request), "form": form, "queryset": queryset,
                                   "action": "cancel", "title": "Cancel", "opts": self.model._meta,
                                   "intro": f"Cancel these orders ({open_orders.count()} of them pending or "
                                            "approved; the others cannot be canceled):"}
        return TemplateResponse(request, "admin/action_form.html", context)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        """The order's page with its saga drawn beside the table (templates/admin/orders/order/change_form.html).
        The order is looked up through ``get_object``, so whatever scopes this admin's queryset scopes it too."""
        from console.saga import draw_saga, order_saga_events  # the console draws; orders only hands it the order

        extra_context = dict(extra_context or {})
        order = self.get_object(request, unquote(object_id))
        if order is not None:
            events = order_saga_events(order=order)
            extra_context.update(saga_events=events, saga_timeline=draw_saga(events))
        return super().change_view(request, object_id, form_url, extra_context)

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # read-only record: the page shows no Save button


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    """What the saga sweep did about each dead-lettered order event (read-only)."""

    list_display = ("delivery_id", "order", "event_name", "consumer", "action", "created_at")
    list_filter = ("action", "consumer", "event_name")
    search_fields = ("order__id", "delivery_id")
    readonly_fields = [f.name for f in DeadLetter._meta.fields]

    def lookup_allowed(self, lookup, value, request=None) -> bool:  # type: ignore[no-untyped-def]
        # ?order__instance=<id>: the dashboard's link to an instance's dead letters (no filter listing instances).
        return lookup == "order__instance" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

"""inventory's admin. Stock never goes through a form: on hand and reserved are read-only everywhere, a change form
saves only the fields it edited (a stale form cannot write back an old stock figure), and restocking is an action
that adds a quantity through ``product_restock`` (an atomic, conditional increment)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from inventory.models import PriceQuote, Product, Reservation
from inventory.services import MAX_STOCK, product_restock
from saaskit.errors import ApplicationError

STOCK_FIELDS = ("stock_on_hand", "stock_reserved")


class RestockForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_STOCK, help_text="units to add to each product")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "instance", "price", "currency", "stock_on_hand", "stock_reserved")
    list_filter = ("currency",)  # instances: by search or ?instance=<id>
    search_fields = ("sku", "name", "=instance__slug")
    readonly_fields = (*STOCK_FIELDS, "created_at", "updated_at")
    actions = ["restock"]

    def save_model(self, request: HttpRequest, obj: Product, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.save()  # a new product starts with no stock; restock it with the action
            return
        # Only what this form changed: never the whole row as it was when the form was loaded.
        edited = [name for name in form.changed_data if name not in self.readonly_fields]
        if edited:
            obj.save(update_fields=[*edited, "updated_at"])

    @admin.action(description="Restock selected products (add a quantity)")
    def restock(self, request: HttpRequest, queryset: QuerySet[Product]) -> HttpResponse | None:
        form = RestockForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for product in queryset.order_by("pk"):
                try:
                    product_restock(product=product, quantity=form.cleaned_data["quantity"], actor=request.user)
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"{product}: {exc}", messages.ERROR)
            self.message_user(request, f"Restocked {done} product(s) by {form.cleaned_data['quantity']}.",
                              messages.SUCCESS)
            return None
        context: dict[str, Any] = {**self.admin_site.each_context(request), "form": form, "queryset": queryset,
                                   "action": "restock", "title": "Restock", "opts": self.model._meta,
                                   "intro": "Add this many units to the stock on hand of:"}
        return TemplateResponse(request, "admin/action_form.html", context)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ("order_id", "instance", "status", "amount", "currency", "reason", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id", "=instance__slug")
    readonly_fields = [f.name for f in Reservation._meta.fields]
    read_only_record = True  # console.admin_base: no Save buttons; changes go through actions

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(PriceQuote)
class PriceQuoteAdmin(admin.ModelAdmin):
    list_display = ("order_id", "instance", "amount", "currency", "created_at")
    search_fields = ("order_id", "=instance__slug")
    readonly_fields = [f.name for f in PriceQuote._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

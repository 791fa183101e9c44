"""payments' admin. Balances are read-only everywhere; a manual change is the "adjust" action (an amount and a
reason, written to the ledger with the acting admin through ``wallet_adjust``). A wallet with ledger entries or
payments cannot be deleted; ledger rows are read-only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from payments.models import Alert, LedgerEntry, LedgerTransaction, Payment, Wallet
from payments.services import MAX_AMOUNT, alerts_acknowledge, wallet_adjust
from saaskit.errors import ApplicationError


class AdjustForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT,
                                help_text="signed: positive credits the wallet, negative debits it")
    reason = forms.CharField(max_length=200, help_text="kept on the ledger with your name")

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Must not be zero.")
        return amount


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "instance", "currency", "balance", "updated_at")
    list_filter = ("currency",)  # instances: by search or ?instance=<id>
    search_fields = ("user__email", "=instance__slug")
    readonly_fields = ("balance", "created_at", "updated_at")
    actions = ["adjust"]
    read_only_record = True  # console.admin_base: a saved wallet changes through "adjust" only; no Save buttons
    LEDGER_SHOWN = 20

    def get_readonly_fields(self, request: HttpRequest, obj: Wallet | None = None) -> tuple[str, ...]:
        # Moving a wallet to another owner, instance or currency would rewrite what its ledger entries mean.
        return (*self.readonly_fields, "instance", "user", "currency", "ledger") if obj else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Wallet | None = None) -> list[str]:
        fields = [name for name in super().get_fields(request, obj) if name != "ledger"]
        return [*fields, "ledger"] if obj else fields

    @admin.display(description="ledger entries")
    def ledger(self, wallet: Wallet) -> str:
        """The newest entries of the wallet (read-only), with a link to all of them."""
        entries = list(wallet.entries.select_related("transaction").order_by("-pk")[: self.LEDGER_SHOWN])
        if not entries:
            return "none"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (entry.created_at.strftime("%Y-%m-%d %H:%M:%S"), entry.transaction.get_kind_display(), entry.amount,
             entry.currency, entry.transaction.reason) for entry in entries))
        url = f"{reverse('admin:payments_ledgerentry_changelist')}?{urlencode({'wallet': wallet.pk})}"
        return format_html('<table class="wallet-ledger"><thead><tr><th>at</th><th>kind</th><th>amount</th>'
                           "<th>currency</th><th>reason</th></tr></thead><tbody>{}</tbody></table>"
                           '<p><a href="{}">every entry of this wallet</a></p>', rows, url)

    def save_model(self, request: HttpRequest, obj: Wallet, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.save()
            return
        edited = [name for name in form.changed_data if name not in self.get_readonly_fields(request, obj)]
        if edited:
            obj.save(update_fields=[*edited, "updated_at"])

    def has_delete_permission(self, request: HttpRequest, obj: Wallet | None = None) -> bool:
        # Never in bulk; one wallet only while no money has ever moved through it.
        if obj is None:
            return False
        return (super().has_delete_permission(request, obj) and not obj.entries.exists()
                and not obj.payments.exists())

    @admin.action(description="Adjust the balance of selected wallets (amount and reason)")
    def adjust(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse | None:
        form = AdjustForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for wallet in queryset.order_by("pk"):
                try:
                    wallet_adjust(wallet=wallet, amount=form.cleaned_data["amount"],
                                  reason=form.cleaned_data["reason"], actor=request.user)
                    done += 1
                except ApplicationError as exc:
                    self.message_user(request, f"{wallet}: {exc}", messages.ERROR)
            self.message_user(request, f"Adjusted {done} wallet(s) by {form.cleaned_data['amount']}.",
                              messages.SUCCESS if done else messages.WARNING)
            return None
        context: dict[str, Any] = {**self.admin_site.each_context(request), "form": form, "queryset": queryset,
                                   "action": "adjust", "title": "Adjust", "opts": self.model._meta,
                                   "intro": "Write a ledger adjustment on each of these wallets:"}
        return TemplateResponse(request, "admin/action_form.html", context)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order_id", "instance", "customer", "amount", "currency", "status", "reason", "created_at")
    list_filter = ("status", "reason")
    search_fields = ("order_id", "customer__email", "=instance__slug")
    readonly_fields = [f.name for f in Payment._meta.fields]
    read_only_record = True  # console.admin_base: no Save buttons; changes go through actions

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    fields = readonly_fields = ("account", "wallet", "amount", "currency")

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnly):
    list_display = ("id", "instance", "kind", "currency", "order_id", "actor", "reason", "created_at")
    list_filter = ("kind", "currency")
    search_fields = ("order_id", "reason", "actor__email", "=instance__slug")
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnly):
    list_display = ("id", "transaction", "instance", "account", "wallet", "amount", "currency", "created_at")
    list_filter = ("account", "currency")
    search_fields = ("wallet__user__email", "transaction__order_id", "=instance__slug")


@admin.register(Alert)
class AlertAdmin(ReadOnly):
    """Suspicious activity reported on the bus; "acknowledge" records who looked at it and when."""

    list_display = ("id", "instance", "kind", "subject", "details", "created_at", "acknowledged_by", "acknowledged_at")
    list_filter = (("acknowledged_at", admin.EmptyFieldListFilter), "kind")
    search_fields = ("subject", "details", "=instance__slug")
    actions = ["acknowledge"]

    readonly_fields = [f.name for f in Alert._meta.fields]

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = alerts_acknowledge(instance=None, alert_ids=list(queryset.values_list("pk", flat=True)),
                                  actor=request.user)
        self.message_user(request, f"Acknowledged {done} alert(s).", messages.SUCCESS)

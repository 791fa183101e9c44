from django.contrib import admin

from payments.models import Payment, Wallet


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("user", "instance", "currency", "balance", "updated_at")
    list_filter = ("instance", "currency")
    search_fields = ("user__email",)
    # Balances move only through services (top-up, charge, refund).
    readonly_fields = ("balance", "created_at", "updated_at")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order_id", "instance", "customer", "amount", "currency", "status", "reason", "created_at")
    list_filter = ("status", "reason", "instance")
    search_fields = ("order_id", "customer__email")
    readonly_fields = [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

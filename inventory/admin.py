from django.contrib import admin

from inventory.models import Product, Reservation


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "instance", "price", "currency", "stock_on_hand", "stock_reserved")
    list_filter = ("instance", "currency")
    search_fields = ("sku", "name")
    # Stock moves only through services (restock, reservations); the admin shows it.
    readonly_fields = ("stock_reserved", "created_at", "updated_at")


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ("order_id", "instance", "status", "amount", "currency", "reason", "updated_at")
    list_filter = ("status", "instance")
    search_fields = ("order_id",)
    readonly_fields = [f.name for f in Reservation._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

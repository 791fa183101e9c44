from django.urls import path

from inventory.api.endpoints import (
    ProductDetailApi,
    ProductListCreateApi,
    ProductRestockApi,
)

app_name = "inventory"

urlpatterns = [
    path("", ProductListCreateApi.as_view(), name="list"),
    path("<int:product_id>/", ProductDetailApi.as_view(), name="detail"),
    path("<int:product_id>/restock", ProductRestockApi.as_view(), name="restock"),
]

from django.urls import path

from orders.api.endpoints import OrderCancelApi, OrderDetailApi, OrderListCreateApi

app_name = "orders"

urlpatterns = [
    path("", OrderListCreateApi.as_view(), name="list"),
    path("<int:order_id>/", OrderDetailApi.as_view(), name="detail"),
    path("<int:order_id>/cancel", OrderCancelApi.as_view(), name="cancel"),
]

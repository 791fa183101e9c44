from django.urls import path

from payments.api.endpoints import WalletListCreateApi, WalletTopUpApi

app_name = "payments"

urlpatterns = [
    path("", WalletListCreateApi.as_view(), name="wallets"),
    path("<int:wallet_id>/top-up", WalletTopUpApi.as_view(), name="top-up"),
]

from django.urls import path

from payments.api.endpoints import WalletAdjustApi, WalletEntriesApi, WalletListCreateApi, WalletTopUpApi

app_name = "payments"

urlpatterns = [
    path("", WalletListCreateApi.as_view(), name="wallets"),
    path("<int:wallet_id>/top-up", WalletTopUpApi.as_view(), name="top-up"),
    path("<int:wallet_id>/adjust", WalletAdjustApi.as_view(), name="adjust"),
    path("<int:wallet_id>/entries", WalletEntriesApi.as_view(), name="entries"),
]

"""Payments HTTP API (``/api/v1/wallets/``): a member opens and reads their own wallets; accountants top up.

Charges and refunds happen only in the saga (events), never through this API.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import InstanceScopedAPIView
from authz.permissions import CanActIn
from payments import selectors, services
from payments.models import Wallet


class WalletOutput(serializers.ModelSerializer):
    class Meta:
        model = Wallet
        fields = ["id", "user_id", "currency", "balance"]


class WalletListCreateApi(InstanceScopedAPIView):
    class WalletOpenInput(serializers.Serializer):
        currency = serializers.RegexField(r"^[A-Z]{3}$")

    @extend_schema(operation_id="wallets_list", responses=WalletOutput(many=True))
    def get(self, request: Request) -> Response:
        wallets = selectors.wallets_of(instance=self.instance, user=request.user)
        return Response({"results": WalletOutput(wallets, many=True).data})

    @extend_schema(operation_id="wallets_open", request=WalletOpenInput, responses={201: WalletOutput})
    def post(self, request: Request) -> Response:
        data = self.WalletOpenInput(data=request.data)
        data.is_valid(raise_exception=True)
        wallet = services.wallet_create(instance=self.instance, user=request.user, **data.validated_data)
        return Response(WalletOutput(wallet).data, status=status.HTTP_201_CREATED)


class WalletTopUpApi(InstanceScopedAPIView):
    permission_classes = [*InstanceScopedAPIView.permission_classes, CanActIn("accountant")]

    class WalletTopUpInput(serializers.Serializer):
        amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))

    @extend_schema(operation_id="wallets_top_up", request=WalletTopUpInput, responses=WalletOutput)
    def post(self, request: Request, wallet_id: int) -> Response:
        data = self.WalletTopUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        wallet = selectors.wallet_get(instance=self.instance, wallet_id=wallet_id)
        wallet = services.wallet_top_up(wallet=wallet, **data.validated_data)
        return Response(WalletOutput(wallet).data)

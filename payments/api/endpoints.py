"""Payments HTTP API (``/api/v1/wallets/``): a member opens and reads their own wallets and their ledger entries;
accountants top up, adjust (a signed amount with a reason, on the ledger with the actor) and read any wallet's
entries.

Charges and refunds happen only in the saga (events), never through this API.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import InstanceScopedAPIView
from authz.permissions import CanActIn
from payments import selectors, services
from payments.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from payments.models import Alert, LedgerEntry, Wallet
from saaskit.pagination import Pagination


class WalletOutput(serializers.ModelSerializer):
    class Meta:
        model = Wallet
        fields = ["id", "user_id", "currency", "balance"]


class WalletListCreateApi(InstanceScopedAPIView):
    class WalletOpenInput(serializers.Serializer):
        currency = serializers.RegexField(r"^[A-Z]{3}$")

    @extend_schema(operation_id="wallets_list", responses=inline_serializer(
        "WalletList", {"results": WalletOutput(many=True)}))
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

    @extend_schema(operation_id="wallets_top_up", request=WalletTopUpInput, responses=WalletOutput,
                   parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request, wallet_id: int) -> Response:
        def run() -> Response:
            data = self.WalletTopUpInput(data=request.data)
            data.is_valid(raise_exception=True)
            wallet = selectors.wallet_get(instance=self.instance, wallet_id=wallet_id)
            wallet = services.wallet_top_up(wallet=wallet, actor=request.user, **data.validated_data)
            return Response(WalletOutput(wallet).data)
        return idempotent(request, run)


class WalletAdjustApi(InstanceScopedAPIView):
    permission_classes = [*InstanceScopedAPIView.permission_classes, CanActIn("accountant")]

    class WalletAdjustInput(serializers.Serializer):
        amount = serializers.DecimalField(max_digits=14, decimal_places=2,
                                          help_text="signed: positive credits, negative debits")
        reason = serializers.CharField(max_length=200)

    class WalletAdjustOutput(serializers.Serializer):
        wallet = WalletOutput()
        transaction_id = serializers.IntegerField()

    @extend_schema(operation_id="wallets_adjust", request=WalletAdjustInput, responses=WalletAdjustOutput,
                   parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request, wallet_id: int) -> Response:
        def run() -> Response:
            data = self.WalletAdjustInput(data=request.data)
            data.is_valid(raise_exception=True)
            wallet = selectors.wallet_get(instance=self.instance, wallet_id=wallet_id)
            tx = services.wallet_adjust(wallet=wallet, actor=request.user, **data.validated_data)
            return Response(self.WalletAdjustOutput({"wallet": wallet, "transaction_id": tx.pk}).data)
        return idempotent(request, run)


class LedgerEntryOutput(serializers.ModelSerializer):
    transaction_id = serializers.IntegerField()
    kind = serializers.CharField(source="transaction.kind")
    order_id = serializers.IntegerField(source="transaction.order_id", allow_null=True)
    reason = serializers.CharField(source="transaction.reason")
    actor_id = serializers.IntegerField(source="transaction.actor_id", allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "transaction_id", "kind", "amount", "currency", "order_id", "reason", "actor_id",
                  "created_at"]


class WalletEntriesApi(InstanceScopedAPIView):
    pagination_class = Pagination  # the schema shows the paged shape
    @extend_schema(operation_id="wallets_entries", responses=LedgerEntryOutput(many=True))
    def get(self, request: Request, wallet_id: int) -> Response:
        wallet = selectors.access_wallet_ledger(actor=request.user, instance=self.instance, wallet_id=wallet_id,
                                                ctx=request.auth)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.wallet_entries(wallet=wallet), request, view=self)
        return paginator.get_paginated_response(LedgerEntryOutput(page, many=True).data)


class AlertOutput(serializers.ModelSerializer):
    acknowledged_by_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Alert
        fields = ["id", "kind", "subject", "user_id", "details", "created_at", "acknowledged_by_id", "acknowledged_at"]


class AlertListApi(InstanceScopedAPIView):
    """The instance's alerts (event-suspicious-activity), newest first, for its admins."""
    pagination_class = Pagination  # the schema shows the paged shape

    permission_classes = [*InstanceScopedAPIView.permission_classes, CanActIn("instance_admin")]

    @extend_schema(operation_id="alerts_list", responses=AlertOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.alerts_of(instance=self.instance), request, view=self)
        return paginator.get_paginated_response(AlertOutput(page, many=True).data)

"""Orders HTTP API (``/api/v1/orders/``): a customer places, lists, reads and cancels their orders.

Adapters only: validate the shape, call one service or selector, serialize. Everything is scoped to the
caller's instance (from the token); another customer's or another instance's order is the same 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import InstanceScopedAPIView
from orders import selectors, services
from orders.models import Order
from payments.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from saaskit.pagination import Pagination


class OrderOutput(serializers.ModelSerializer):
    class Line(serializers.Serializer):
        product_id = serializers.IntegerField()
        quantity = serializers.IntegerField()
        unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)

    class TimelineEntry(serializers.Serializer):
        kind = serializers.CharField()
        detail = serializers.JSONField()
        created_at = serializers.DateTimeField()

    lines = Line(many=True)
    timeline = TimelineEntry(many=True)

    class Meta:
        model = Order
        fields = ["id", "status", "currency", "total", "reason", "lines", "timeline", "created_at", "approved_at",
                  "canceled_at"]


class OrderListCreateApi(InstanceScopedAPIView):
    pagination_class = Pagination  # the schema shows the paged shape

    class LineInput(serializers.Serializer):
        product_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_QUANTITY)

    class OrderPlaceInput(serializers.Serializer):
        currency = serializers.RegexField(r"^[A-Z]{3}$")
        lines = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=services.MAX_LINES)

        def validate_lines(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
            line = OrderListCreateApi.LineInput(data=value, many=True)
            line.is_valid(raise_exception=True)
            return [dict(item) for item in line.validated_data]

    @extend_schema(operation_id="orders_list", responses=OrderOutput(many=True))
    def get(self, request: Request) -> Response:
        orders = selectors.order_list_for_customer(instance=self.instance, customer=request.user).prefetch_related(
            "lines", "timeline")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutput(page, many=True).data)

    @extend_schema(operation_id="orders_place", request=OrderPlaceInput, responses={201: OrderOutput},
                   parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        def run() -> Response:
            data = self.OrderPlaceInput(data=request.data)
            data.is_valid(raise_exception=True)
            # The placed order carries its lines and timeline: no need to read it back.
            order = services.order_place(instance=self.instance, customer=request.user, **data.validated_data)
            return Response(OrderOutput(order).data, status=status.HTTP_201_CREATED)
        # A client retrying after a timeout sends the same Idempotency-Key: one order, the first answer again.
        return idempotent(request, run)


class OrderDetailApi(InstanceScopedAPIView):
    @extend_schema(operation_id="orders_get", responses=OrderOutput)
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.access_order_by_id(actor=request.user, order_id=order_id, instance=self.instance,
                                             ctx=request.auth)
        return Response(OrderOutput(order).data)


class OrderCancelApi(InstanceScopedAPIView):
    @extend_schema(operation_id="orders_cancel", request=None, responses=OrderOutput)
    def post(self, request: Request, order_id: int) -> Response:
        order = selectors.access_order_by_id(actor=request.user, order_id=order_id, instance=self.instance,
                                             action="cancel", ctx=request.auth)
        services.order_cancel(order=order)
        return Response(OrderOutput(selectors.order_get(instance=self.instance, order_id=order.pk)).data)

"""Inventory HTTP API (``/api/v1/products/``): every member reads the instance's catalogue; clerks add and restock.

Stock is never written here directly: restocking is an increment, reservations move it through the saga.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import InstanceScopedAPIView
from authz.permissions import CanActIn
from inventory import selectors, services
from inventory.models import Product
from payments.idempotency import IDEMPOTENCY_PARAMETER, idempotent
from saaskit.pagination import Pagination


class ProductOutput(serializers.ModelSerializer):
    stock_available = serializers.IntegerField()

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "currency", "stock_on_hand", "stock_reserved", "stock_available"]


class ProductListCreateApi(InstanceScopedAPIView):
    pagination_class = Pagination  # the schema shows the paged shape

    class ProductCreateInput(serializers.Serializer):
        sku = serializers.CharField(max_length=64)
        name = serializers.CharField(max_length=200)
        price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0))
        currency = serializers.RegexField(r"^[A-Z]{3}$", default="USD")
        stock_on_hand = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)

    def get_permissions(self) -> list[BasePermission]:
        extra = [CanActIn("clerk")] if self.request.method == "POST" else []
        return [*super().get_permissions(), *extra]

    @extend_schema(operation_id="products_list", responses=ProductOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(Product.objects.for_instance(self.instance).order_by("sku"), request,
                                           view=self)
        return paginator.get_paginated_response(ProductOutput(page, many=True).data)

    @extend_schema(operation_id="products_create", request=ProductCreateInput, responses={201: ProductOutput})
    def post(self, request: Request) -> Response:
        data = self.ProductCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(instance=self.instance, **data.validated_data)
        return Response(ProductOutput(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(InstanceScopedAPIView):
    @extend_schema(operation_id="products_get", responses=ProductOutput)
    def get(self, request: Request, product_id: int) -> Response:
        return Response(ProductOutput(selectors.product_get(instance=self.instance, product_id=product_id)).data)


class ProductRestockApi(InstanceScopedAPIView):
    permission_classes = [*InstanceScopedAPIView.permission_classes, CanActIn("clerk")]

    class ProductRestockInput(serializers.Serializer):
        quantity = serializers.IntegerField(min_value=1, max_value=2**31 - 1)

    @extend_schema(operation_id="products_restock", request=ProductRestockInput, responses=ProductOutput,
                   parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request, product_id: int) -> Response:
        def run() -> Response:
            data = self.ProductRestockInput(data=request.data)
            data.is_valid(raise_exception=True)
            product = selectors.product_get(instance=self.instance, product_id=product_id)
            product = services.product_restock(product=product, actor=request.user, **data.validated_data)
            return Response(ProductOutput(product).data)
        # A clerk retrying after a cut connection sends the same Idempotency-Key: the units are added once.
        return idempotent(request, run)

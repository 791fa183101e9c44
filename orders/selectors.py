from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import Instance, User
from orders.choices import OrderStatus
from orders.error_codes import OrdersErrorCode
from orders.models import Order
from saaskit.errors import NotFoundError


def order_exists(*, instance: Instance | int, order_id: int) -> bool:
    return Order.objects.for_instance(instance).filter(pk=order_id).exists()


def order_get(*, instance: Instance | int, order_id: int) -> Order:
    """The instance's order, or the same 404 whether it is missing or belongs to another instance."""
    order = Order.objects.for_instance(instance).prefetch_related("lines", "timeline").filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("Order not found.", code=OrdersErrorCode.ORDER_NOT_FOUND)
    return order


def order_list_for_customer(*, instance: Instance, customer: User) -> QuerySet[Order]:
    return Order.objects.for_instance(instance).filter(customer=customer).order_by("-created_at", "-id")


def access_order_by_id(*, actor: User, order_id: int, instance: Instance, action: str = "get",
                       ctx: object | None = None) -> Order:
    """The order if the actor may ``action`` it: its customer, or anyone authz allows. Otherwise the same 404
    for missing, foreign-instance and not-yours orders."""
    order = Order.objects.for_instance(instance).prefetch_related("lines", "timeline").filter(pk=order_id).first()
    if order is None or not (order.customer_id == actor.pk or _authz_allows(ctx, action, order)):
        raise NotFoundError("Order not found.", code=OrdersErrorCode.ORDER_NOT_FOUND)
    return order


def _authz_allows(ctx: object | None, action: str, order: Order) -> bool:
    if ctx is None:
        return False
    from authz.access import (
        can,  # the ACL (delegated access: e.g. a clerk granted orders:get)
    )

    return can(ctx, action, order)


@dataclass(frozen=True)
class SagaStatus:
    counts: dict[str, int]
    oldest_pending: Order | None
    needing_attention: list[Order]
    overdue: list[Order]  # pending past the deadline: the sweep has not run (or is not running)


def saga_status(*, deadline_seconds: float, now: datetime | None = None, limit: int = 50) -> SagaStatus:
    counts = {status: 0 for status in OrderStatus.values}
    for row in Order.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    pending = Order.objects.filter(status=OrderStatus.PENDING).order_by("created_at", "id")
    cutoff = (now or timezone.now()) - timedelta(seconds=deadline_seconds)
    return SagaStatus(
        counts=counts,
        oldest_pending=pending.first(),
        needing_attention=list(Order.objects.filter(needs_attention=True).order_by("id")[:limit]),
        overdue=list(pending.filter(created_at__lt=cutoff)[:limit]),
    )

"""The figures on the console's index: per instance, today's orders per status and live refresh tokens; for a
superuser also the bus (dead letters, parked deliveries, the oldest pending delivery). Each figure links to the
changelist filtered to what it counts.

Reads only through the apps' models, with a few grouped aggregate queries (their number does not grow with the
instances shown). A superuser sees the instances with the most orders today (at most ``MAX_INSTANCES``), an
instance admin the instances they administer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone

from accounts.models import Instance, RefreshToken
from console.scoping import ALL, admin_instance_ids
from events.choices import DeliveryStatus
from events.models import Delivery
from orders.choices import OrderStatus
from orders.models import Order

MAX_INSTANCES = 20


@dataclass(frozen=True)
class Figure:
    label: str
    value: int | str
    url: str


@dataclass(frozen=True)
class InstanceRow:
    instance: Instance
    url: str
    orders_today: list[Figure]
    live_refresh_tokens: Figure


@dataclass(frozen=True)
class Dashboard:
    since: datetime
    statuses: list[str]
    rows: list[InstanceRow]
    more_instances: int = 0  # instances with orders today that were not shown
    bus: list[Figure] = field(default_factory=list)  # superusers only


def _url(name: str, **params: Any) -> str:
    base = reverse(name)
    return f"{base}?{urlencode(params)}" if params else base


def _age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _bus_figures(now: datetime) -> list[Figure]:
    counts = dict(Delivery.objects.filter(status__in=[DeliveryStatus.DEAD, DeliveryStatus.PARKED])
                  .order_by().values_list("status").annotate(n=Count("id")))
    oldest = Delivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(at=Min("created_at"))["at"]
    changelist = "admin:events_delivery_changelist"
    return [
        Figure("dead letters", counts.get(DeliveryStatus.DEAD, 0),
               _url(changelist, status__exact=DeliveryStatus.DEAD)),
        Figure("parked deliveries", counts.get(DeliveryStatus.PARKED, 0),
               _url(changelist, status__exact=DeliveryStatus.PARKED)),
        Figure("oldest pending delivery", _age(oldest, now) if oldest else "none",
               _url(changelist, status__exact=DeliveryStatus.PENDING)),
    ]


def dashboard_for(*, user: Any, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    ids = admin_instance_ids(user)
    today = Order.objects.filter(created_at__gte=since).order_by()
    if ids is not ALL:
        today = today.filter(instance_id__in=list(ids or ()))
    per_status: dict[int, dict[str, int]] = {}
    for instance_id, status, n in today.values_list("instance_id", "status").annotate(n=Count("id")):
        per_status.setdefault(instance_id, {})[status] = n

    if ids is ALL:
        busiest = sorted(per_status, key=lambda pk: (-sum(per_status[pk].values()), pk))
        shown, more = busiest[:MAX_INSTANCES], max(0, len(busiest) - MAX_INSTANCES)
    else:
        shown, more = sorted(ids or ()), 0
    instances = Instance.objects.in_bulk(shown)
    live = dict(RefreshToken.objects.usable().filter(instance_id__in=shown).order_by()
                .values_list("instance_id").annotate(n=Count("id")))

    order_list = "admin:orders_order_changelist"
    since_param = since.isoformat()
    rows = []
    for pk in shown:
        instance = instances.get(pk)
        if instance is None:
            continue
        counts = per_status.get(pk, {})
        rows.append(InstanceRow(
            instance=instance,
            url=reverse("admin:accounts_instance_change", args=[pk]),
            orders_today=[Figure(status, counts.get(status, 0),
                                 _url(order_list, instance=pk, status=status, created_at__gte=since_param))
                          for status in OrderStatus.values],
            live_refresh_tokens=Figure("live refresh tokens", live.get(pk, 0),
                                       _url("admin:accounts_refreshtoken_changelist", instance=pk, state="active")),
        ))
    return Dashboard(since=since, statuses=list(OrderStatus.values), rows=rows, more_instances=more,
                     bus=_bus_figures(now) if ids is ALL else [])

"""The figures on the console's index. Per instance: today's orders per status, orders needing attention, the
saga's dead letters (``orders.DeadLetter``), open alerts and live refresh tokens; for a superuser also, per
instance, the bus's parked deliveries and oldest pending delivery, and the whole bus (dead letters, parked
deliveries, the oldest pending delivery). Each figure links to the changelist filtered to what it counts.

Reads only through the apps' models, with a few grouped aggregate queries (their number does not grow with the
instances shown). A superuser sees the instances with the most to look at (orders today, orders needing
attention, dead letters, open alerts; at most ``MAX_INSTANCES``), an instance admin the instances they
administer. The bus is platform-level: an instance admin sees none of its figures.
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
from orders.models import DeadLetter, Order
from payments.models import Alert

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
    # needing attention, dead letters, open alerts; for a superuser also parked and oldest pending delivery
    attention: list[Figure] = field(default_factory=list)


@dataclass(frozen=True)
class Dashboard:
    since: datetime
    statuses: list[str]
    rows: list[InstanceRow]
    more_instances: int = 0  # instances with orders today that were not shown
    bus: list[Figure] = field(default_factory=list)  # superusers only
    attention_labels: list[str] = field(default_factory=list)  # the columns of ``InstanceRow.attention``

    @property
    def columns(self) -> int:
        return 1 + len(self.statuses) + len(self.attention_labels) + 1


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


def _grouped(queryset: Any, by: str) -> dict[int, int]:
    """``{instance id: rows}`` of ``queryset`` grouped by ``by``, in one query."""
    return dict(queryset.order_by().values_list(by).annotate(n=Count("pk")))


def dashboard_for(*, user: Any, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    ids = admin_instance_ids(user)
    superuser = ids is ALL
    wanted = None if superuser else sorted(ids or ())

    def scoped(queryset: Any, path: str = "instance_id") -> Any:
        return queryset if wanted is None else queryset.filter(**{f"{path}__in": wanted})

    per_status: dict[int, dict[str, int]] = {}
    today = scoped(Order.objects.filter(created_at__gte=since)).order_by()
    for instance_id, status, n in today.values_list("instance_id", "status").annotate(n=Count("id")):
        per_status.setdefault(instance_id, {})[status] = n
    attention = _grouped(scoped(Order.objects.filter(needs_attention=True)), "instance_id")
    dead_letters = _grouped(scoped(DeadLetter.objects.filter(order__isnull=False), "order__instance_id"),
                            "order__instance_id")
    alerts = _grouped(scoped(Alert.objects.filter(acknowledged_at__isnull=True)), "instance_id")

    if superuser:
        weight: dict[int, int] = {}
        for counts in (attention, dead_letters, alerts, *({pk: sum(c.values())} for pk, c in per_status.items())):
            for pk, n in counts.items():
                weight[pk] = weight.get(pk, 0) + n
        busiest = sorted(weight, key=lambda pk: (-weight[pk], pk))
        shown, more = busiest[:MAX_INSTANCES], max(0, len(busiest) - MAX_INSTANCES)
    else:
        shown, more = list(wanted or ()), 0
    instances = Instance.objects.in_bulk(shown)
    live = _grouped(RefreshToken.objects.usable().filter(instance_id__in=shown), "instance_id")
    parked: dict[int, int] = {}
    oldest: dict[int, datetime] = {}
    if superuser and shown:  # the bus, per instance: through the events' instance (deliveries carry none)
        open_deliveries = (Delivery.objects.filter(status__in=[DeliveryStatus.PARKED, DeliveryStatus.PENDING],
                                                   event__instance_id__in=shown)
                           .order_by().values_list("event__instance_id", "status")
                           .annotate(n=Count("pk"), at=Min("created_at")))
        for instance_id, status, n, at in open_deliveries:
            if status == DeliveryStatus.PARKED:
                parked[instance_id] = n
            else:
                oldest[instance_id] = at

    order_list = "admin:orders_order_changelist"
    deliveries = "admin:events_delivery_changelist"
    since_param = since.isoformat()
    rows = []
    for pk in shown:
        instance = instances.get(pk)
        if instance is None:
            continue
        counts = per_status.get(pk, {})
        figures = [
            Figure("needing attention", attention.get(pk, 0), _url(order_list, instance=pk, needs_attention__exact=1)),
            Figure("dead letters", dead_letters.get(pk, 0), _url("admin:orders_deadletter_changelist",
                                                                 order__instance=pk)),
            Figure("open alerts", alerts.get(pk, 0), _url("admin:payments_alert_changelist", instance=pk,
                                                          acknowledged_at__isempty=1)),
        ]
        if superuser:
            figures += [
                Figure("parked deliveries", parked.get(pk, 0),
                       _url(deliveries, event__instance_id=pk, status__exact=DeliveryStatus.PARKED)),
                Figure("oldest pending delivery", _age(oldest[pk], now) if pk in oldest else "none",
                       _url(deliveries, event__instance_id=pk, status__exact=DeliveryStatus.PENDING)),
            ]
        rows.append(InstanceRow(
            instance=instance,
            url=reverse("admin:accounts_instance_change", args=[pk]),
            orders_today=[Figure(status, counts.get(status, 0),
                                 _url(order_list, instance=pk, status=status, created_at__gte=since_param))
                          for status in OrderStatus.values],
            live_refresh_tokens=Figure("live refresh tokens", live.get(pk, 0),
                                       _url("admin:accounts_refreshtoken_changelist", instance=pk, state="active")),
            attention=figures,
        ))
    labels = ["needing attention", "dead letters", "open alerts"]
    if superuser:
        labels += ["parked deliveries", "oldest pending delivery"]
    return Dashboard(since=since, statuses=list(OrderStatus.values), rows=rows, more_instances=more,
                     bus=_bus_figures(now) if superuser else [], attention_labels=labels)

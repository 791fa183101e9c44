from collections.abc import Iterator
from typing import Any

from django.apps import AppConfig


def orders_state() -> Iterator[Any]:
    """Orders per status and orders needing attention, read when ``/metrics`` is scraped."""
    from django.db.models import Count
    from prometheus_client.core import GaugeMetricFamily

    from orders.choices import OrderStatus
    from orders.models import Order

    per_status = GaugeMetricFamily("saaskit_orders", "Orders by status", labels=["status"])
    counts = dict.fromkeys(OrderStatus.values, 0)
    for row in Order.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    for status, count in sorted(counts.items()):
        per_status.add_metric([status], count)
    attention = GaugeMetricFamily("saaskit_orders_needing_attention", "Orders flagged needs_attention")
    attention.add_metric([], Order.objects.filter(needs_attention=True).count())
    yield from (per_status, attention)


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from saaskit.metrics import register_state_collector

        register_state_collector(orders_state)

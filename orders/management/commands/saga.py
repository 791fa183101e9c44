"""``manage.py saga status [--stuck] [--json]`` | ``saga resume ORDER_ID`` | ``saga cancel ORDER_ID --reason TEXT``.

``status`` prints the orders per status, the oldest pending order and the orders needing attention; ``--stuck``
prints only what needs a human (orders needing attention, orders pending past the deadline) and exits 1 when
there is any. ``resume`` re-runs an order's dead-lettered saga deliveries and clears its flag; ``cancel`` ends a
pending or approved order as an operator (compensation runs through the saga).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orders.models import Order
from orders.selectors import saga_status
from orders.services import order_cancel_by_operator, order_deadline_seconds, order_resume
from saaskit.errors import ApplicationError


def _order(order: Order, now: Any) -> dict[str, Any]:
    return {"id": order.pk, "instance_id": order.instance_id, "status": order.status, "reason": order.reason,
            "age_seconds": round((now - order.created_at).total_seconds(), 1),
            "needs_attention": order.needs_attention, "attention_reason": order.attention_reason}


class Command(BaseCommand):
    help = "Operate the order saga: status [--stuck] [--json], resume ORDER_ID, cancel ORDER_ID --reason TEXT."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        status = sub.add_parser("status", help="orders per status, oldest pending, orders needing attention")
        status.add_argument("--stuck", action="store_true",
                            help="only orders needing attention or pending past the deadline (exit 1 if any)")
        status.add_argument("--json", action="store_true", help="print JSON")
        resume = sub.add_parser("resume", help="re-run an order's dead-lettered deliveries, clear needs_attention")
        resume.add_argument("order_id", type=int)
        cancel = sub.add_parser("cancel", help="cancel a pending or approved order as an operator")
        cancel.add_argument("order_id", type=int)
        cancel.add_argument("--reason", required=True, help="why (kept on the order's timeline)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None

    def _status(self, options: dict[str, Any]) -> None:
        now = timezone.now()
        deadline = order_deadline_seconds()
        status = saga_status(deadline_seconds=deadline, now=now)
        stuck = status.needing_attention or status.overdue
        if options["json"]:
            body: dict[str, Any] = {
                "deadline_seconds": deadline,
                "needs_attention": [_order(o, now) for o in status.needing_attention],
                "overdue": [_order(o, now) for o in status.overdue],
            }
            if not options["stuck"]:
                body = {"counts": status.counts,
                        "oldest_pending": _order(status.oldest_pending, now) if status.oldest_pending else None,
                        **body}
            self.stdout.write(json.dumps(body, indent=2))
        else:
            if not options["stuck"]:
                self.stdout.write("orders: " + ", ".join(f"{k} {v}" for k, v in status.counts.items()))
                oldest = status.oldest_pending
                self.stdout.write(f"oldest pending: order {oldest.pk}, {_order(oldest, now)['age_seconds']}s old"
                                  if oldest else "oldest pending: none")
            self.stdout.write(f"needing attention: {len(status.needing_attention)}")
            for order in status.needing_attention:
                self.stdout.write(f"  order {order.pk} ({order.status}): {order.attention_reason}")
            self.stdout.write(f"pending past the {deadline:g}s deadline: {len(status.overdue)}")
            for order in status.overdue:
                self.stdout.write(f"  order {order.pk}: {_order(order, now)['age_seconds']}s old")
        if options["stuck"] and stuck:
            raise SystemExit(1)

    def _resume(self, options: dict[str, Any]) -> None:
        result = order_resume(order_id=options["order_id"])
        self.stdout.write(f"order {result.order.pk} ({result.order.status}): "
                          f"{len(result.retried)} dead-lettered deliveries sent again; needs_attention cleared")

    def _cancel(self, options: dict[str, Any]) -> None:
        order = order_cancel_by_operator(order_id=options["order_id"], note=options["reason"])
        self.stdout.write(f"order {order.pk}: canceled (operator: {options['reason']}); compensation follows")

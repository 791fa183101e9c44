"""``manage.py payments reconcile [--json]``: recompute every wallet balance from the ledger; exit 1 on any difference
(a wallet whose cached balance is not the sum of its entries, or a transaction whose entries do not sum to zero)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from payments.selectors import ledger_reconcile


class Command(BaseCommand):
    help = "Ledger tools. 'reconcile' checks every wallet balance against its ledger entries (exit 1 on differences)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        reconcile = sub.add_parser("reconcile", help="recompute balances from the ledger; exit 1 on any difference")
        reconcile.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        result = ledger_reconcile()
        if options["json"]:
            self.stdout.write(json.dumps({
                "ok": result.ok,
                "wallets_checked": result.wallets_checked,
                "transactions_checked": result.transactions_checked,
                "differences": [{"wallet_id": d.wallet_id, "instance_id": d.instance_id, "currency": d.currency,
                                 "cached": str(d.cached), "ledger": str(d.ledger)} for d in result.differences],
                "unbalanced_transactions": [{"transaction_id": u.transaction_id, "instance_id": u.instance_id,
                                             "total": str(u.total)} for u in result.unbalanced],
            }, indent=2))
        else:
            for d in result.differences:
                self.stdout.write(f"wallet {d.wallet_id} ({d.currency}, instance {d.instance_id}): cached {d.cached}, "
                                  f"ledger {d.ledger}")
            for u in result.unbalanced:
                self.stdout.write(f"transaction {u.transaction_id} (instance {u.instance_id}) sums to {u.total}")
            self.stdout.write(f"{result.wallets_checked} wallets, {result.transactions_checked} transactions: "
                              + ("balanced" if result.ok else
                                 f"{len(result.differences)} wallet differences, "
                                 f"{len(result.unbalanced)} unbalanced transactions"))
        if not result.ok:
            raise SystemExit(1)

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Instance, User
from payments.models import Alert, LedgerEntry, LedgerTransaction, Payment, Wallet


def wallet_for(*, instance: Instance, user: User, currency: str) -> Wallet | None:
    return Wallet.objects.for_instance(instance).filter(user=user, currency=currency).first()


def payment_for_order(*, instance: Instance, order_id: int) -> Payment | None:
    return Payment.objects.for_instance(instance).filter(order_id=order_id).first()


def wallets_of(*, instance: Instance, user: User) -> list[Wallet]:
    return list(Wallet.objects.for_instance(instance).filter(user=user).order_by("currency"))


def wallet_get(*, instance: Instance, wallet_id: int) -> Wallet:
    """The instance's wallet, or the same 404 whether it is missing or belongs to another instance."""
    from payments.error_codes import PaymentsErrorCode
    from saaskit.errors import NotFoundError

    wallet = Wallet.objects.for_instance(instance).filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFoundError("Wallet not found.", code=PaymentsErrorCode.WALLET_NOT_FOUND)
    return wallet


def wallet_entries(*, wallet: Wallet) -> QuerySet[LedgerEntry]:
    """The wallet's ledger entries, newest first, with their transaction (kind, reason, order, actor)."""
    return LedgerEntry.objects.filter(wallet=wallet).select_related("transaction").order_by("-id")


@dataclass(frozen=True)
class WalletDifference:
    wallet_id: int
    instance_id: int
    currency: str
    cached: Decimal
    ledger: Decimal


@dataclass(frozen=True)
class UnbalancedTransaction:
    transaction_id: int
    instance_id: int
    total: Decimal


@dataclass(frozen=True)
class Reconciliation:
    wallets_checked: int
    transactions_checked: int
    differences: list[WalletDifference]
    unbalanced: list[UnbalancedTransaction]

    @property
    def ok(self) -> bool:
        return not self.differences and not self.unbalanced


_ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=20, decimal_places=2))


def ledger_reconcile() -> Reconciliation:
    """Recompute every wallet's balance from its entries and check every transaction sums to zero."""
    entry_sums = (LedgerEntry.objects.filter(wallet=OuterRef("pk")).order_by().values("wallet")
                  .annotate(total=Sum("amount")).values("total"))
    wallets = Wallet.objects.annotate(ledger=Coalesce(Subquery(entry_sums), _ZERO))
    differences = [WalletDifference(w.pk, w.instance_id, w.currency, w.balance, w.ledger)
                   for w in wallets.exclude(balance=F("ledger")).order_by("pk")]
    transactions = LedgerTransaction.objects.annotate(total=Coalesce(Sum("entries__amount"), _ZERO))
    unbalanced = [UnbalancedTransaction(t.pk, t.instance_id, t.total)
                  for t in transactions.exclude(total=0).order_by("pk")]
    # An empty transaction sums to zero but explains nothing: count it as unbalanced too.
    unbalanced += [UnbalancedTransaction(t.pk, t.instance_id, Decimal("0"))
                   for t in LedgerTransaction.objects.filter(entries__isnull=True).order_by("pk")]
    return Reconciliation(wallets_checked=Wallet.objects.count(),
                          transactions_checked=LedgerTransaction.objects.count(),
                          differences=differences, unbalanced=unbalanced)


def access_wallet_ledger(*, actor: User, instance: Instance, wallet_id: int, ctx: object | None) -> Wallet:
    """The instance's wallet if ``actor`` may read its ledger: its owner, or an accountant (and above). Otherwise the
    same 404 as a missing wallet."""
    from authz.roles import can_act_in
    from payments.error_codes import PaymentsErrorCode
    from saaskit.errors import NotFoundError

    wallet = Wallet.objects.for_instance(instance).filter(pk=wallet_id).first()
    if wallet is None or not (wallet.user_id == actor.pk or (ctx is not None and can_act_in(ctx, "accountant"))):
        raise NotFoundError("Wallet not found.", code=PaymentsErrorCode.WALLET_NOT_FOUND)
    return wallet


def alerts_of(*, instance: Instance) -> QuerySet[Alert]:
    return Alert.objects.for_instance(instance).order_by("-created_at", "-id")

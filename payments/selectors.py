from __future__ import annotations

from accounts.models import Instance, User
from payments.models import Payment, Wallet


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

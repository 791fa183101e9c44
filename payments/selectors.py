from __future__ import annotations

from accounts.models import Instance, User
from payments.models import Payment, Wallet


def wallet_for(*, instance: Instance, user: User, currency: str) -> Wallet | None:
    return Wallet.objects.for_instance(instance).filter(user=user, currency=currency).first()


def payment_for_order(*, instance: Instance, order_id: int) -> Payment | None:
    return Payment.objects.for_instance(instance).filter(order_id=order_id).first()

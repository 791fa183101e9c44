from decimal import Decimal

import pytest

from payments.choices import PaymentStatus
from payments.consumers import charge_for_order, refund_for_order
from payments.models import Payment, Wallet
from payments.services import wallet_create
from tests.inventory.support import Sent
from tests.orders.harness import call_consumer, make_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(instance, customer):
    return wallet_create(instance=instance, user=customer, currency="USD", balance="50.00")


def balance(wallet: Wallet) -> Decimal:
    wallet.refresh_from_db()
    return wallet.balance


def reserved(instance, customer, amount="20.00"):
    return make_event("event-product-reserved", {"order_id": 9, "customer_id": customer.pk, "amount": amount,
                                                "currency": "USD"}, instance.pk)


def test_product_reserved_charges_once(instance, customer, wallet, sent):
    event = reserved(instance, customer)
    call_consumer(charge_for_order, event)
    call_consumer(charge_for_order, event)
    assert balance(wallet) == Decimal("30.00")
    payment = Payment.objects.get()
    assert sent.sent == [Sent("payment_processed", instance.pk, {
        "order_id": 9, "payment_id": payment.pk, "status": "succeeded", "amount": "20.00", "reason": ""}, str(event.id))]


def test_product_reserved_beyond_balance_fails(instance, customer, wallet, sent):
    call_consumer(charge_for_order, reserved(instance, customer, amount="50.01"))
    assert balance(wallet) == Decimal("50.00")
    assert sent.sent[0].payload["status"] == "failed"
    assert sent.sent[0].payload["reason"] == "insufficient_funds"


def test_order_canceled_refunds_once(instance, customer, wallet):
    call_consumer(charge_for_order, reserved(instance, customer))
    event = make_event("event-order-canceled", {"order_id": 9, "reason": "customer_request"}, instance.pk)
    call_consumer(refund_for_order, event)
    call_consumer(refund_for_order, event)
    assert balance(wallet) == Decimal("50.00")
    assert Payment.objects.get().status == PaymentStatus.REFUNDED


def test_order_canceled_before_the_charge_voids_it(instance, customer, wallet, sent):
    call_consumer(refund_for_order, make_event("event-order-canceled", {"order_id": 9, "reason": "x"}, instance.pk))
    call_consumer(charge_for_order, reserved(instance, customer))
    assert balance(wallet) == Decimal("50.00")
    assert Payment.objects.get().status == PaymentStatus.VOIDED
    assert sent.sent == []


@pytest.mark.parametrize("payload", [{"order_id": 9}, {"order_id": 9, "customer_id": "1"}, {"customer_id": 1}])
def test_malformed_product_reserved_raises_and_charges_nothing(instance, wallet, payload):
    with pytest.raises(ValueError):
        call_consumer(charge_for_order, make_event("event-product-reserved", payload, instance.pk))
    assert (balance(wallet), Payment.objects.count()) == (Decimal("50.00"), 0)

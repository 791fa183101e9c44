import pytest

from payments.selectors import payment_for_order, wallet_for
from payments.services import payment_charge_for_order, wallet_create

pytestmark = pytest.mark.django_db


def test_wallet_for_is_scoped_by_instance_and_currency(instance, other_instance, customer):
    wallet = wallet_create(instance=instance, user=customer, currency="USD")
    assert wallet_for(instance=instance, user=customer, currency="USD") == wallet
    assert wallet_for(instance=instance, user=customer, currency="EUR") is None
    assert wallet_for(instance=other_instance, user=customer, currency="USD") is None


def test_payment_for_order_is_scoped_by_instance(instance, other_instance, customer):
    wallet_create(instance=instance, user=customer, currency="USD", balance="5")
    payment = payment_charge_for_order(instance=instance, order_id=8, customer_id=customer.pk, amount="1.00",
                                       currency="USD")
    assert payment_for_order(instance=instance, order_id=8) == payment
    assert payment_for_order(instance=other_instance, order_id=8) is None

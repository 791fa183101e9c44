from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from payments.choices import PaymentStatus
from payments.models import LedgerEntry, LedgerTransaction, Payment, Wallet
from payments.services import (
    payment_charge_for_order,
    payment_refund_for_order,
    wallet_create,
    wallet_top_up,
)
from saaskit.errors import ApplicationError
from tests.factories import UserFactory
from tests.inventory.support import Sent

pytestmark = pytest.mark.django_db


def balance(wallet: Wallet) -> Decimal:
    wallet.refresh_from_db()
    return wallet.balance


@pytest.fixture
def wallet(instance, customer):
    return wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")


def charge(instance, order_id, customer_id, amount, *, currency="USD", causation_id=None):
    return payment_charge_for_order(instance=instance, order_id=order_id, customer_id=customer_id, amount=amount,
                                    currency=currency, causation_id=causation_id)


# --- wallets ----------------------------------------------------------------------------------------------------

def test_wallet_create_and_top_up(instance, customer):
    wallet = wallet_create(instance=instance, user=customer, currency="EUR")
    assert (wallet.instance_id, wallet.user_id, wallet.currency, balance(wallet)) == (
        instance.pk, customer.pk, "EUR", Decimal("0.00"))
    wallet_top_up(wallet=wallet, amount="12.34")
    wallet_top_up(wallet=wallet, amount=Decimal("0.66"))
    assert balance(wallet) == Decimal("13.00")


def test_second_wallet_in_same_currency_is_409(instance, customer, wallet):
    with pytest.raises(ApplicationError) as err:
        wallet_create(instance=instance, user=customer, currency="USD", balance="5")
    assert (err.value.code, err.value.status_code) == ("wallet_exists", 409)
    assert Wallet.objects.count() == 1
    assert balance(wallet) == Decimal("100.00")


@pytest.mark.parametrize("amount", ["0", "-1", "0.001", "x", None, 1.5, True, "NaN"])
def test_top_up_rejects_bad_amount_and_changes_nothing(wallet, amount):
    with pytest.raises(ApplicationError) as err:
        wallet_top_up(wallet=wallet, amount=amount)
    assert err.value.code == "invalid_amount"
    assert balance(wallet) == Decimal("100.00")


@pytest.mark.parametrize("currency", ["usd", "", None, "DOLLAR"])
def test_wallet_create_rejects_bad_currency(instance, customer, currency):
    with pytest.raises(ApplicationError) as err:
        wallet_create(instance=instance, user=customer, currency=currency)
    assert err.value.code == "invalid_currency"
    assert Wallet.objects.count() == 0


def test_balance_check_constraint_refuses_negative_balance(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).update(balance=Decimal("-0.01"))
    assert balance(wallet) == Decimal("100.00")


# --- charge -----------------------------------------------------------------------------------------------------

def test_charge_debits_wallet_records_payment_and_sends_succeeded(instance, customer, wallet, sent):
    payment = charge(instance, 11, customer.pk, "30.25", causation_id="evt-9")
    assert balance(wallet) == Decimal("69.75")
    payment.refresh_from_db()
    assert (payment.status, payment.amount, payment.wallet_id, payment.customer_id, payment.reason) == (
        PaymentStatus.SUCCEEDED, Decimal("30.25"), wallet.pk, customer.pk, "")
    assert sent.sent == [Sent("payment_processed", instance.pk, {
        "order_id": 11, "payment_id": payment.pk, "status": "succeeded", "amount": "30.25", "reason": ""}, "evt-9")]


def test_charge_of_exact_balance_succeeds(instance, customer, wallet):
    assert charge(instance, 12, customer.pk, "100.00").status == PaymentStatus.SUCCEEDED
    assert balance(wallet) == Decimal("0.00")


def test_charge_with_insufficient_funds_fails_and_leaves_balance(instance, customer, wallet, sent):
    payment = charge(instance, 13, customer.pk, "100.01")
    assert balance(wallet) == Decimal("100.00")
    assert (payment.status, payment.reason) == (PaymentStatus.FAILED, "insufficient_funds")
    assert sent.sent == [Sent("payment_processed", instance.pk, {
        "order_id": 13, "payment_id": payment.pk, "status": "failed", "amount": "100.01",
        "reason": "insufficient_funds"}, None)]


def test_charge_without_wallet_in_that_currency_fails(instance, customer, wallet, sent):
    payment = charge(instance, 14, customer.pk, "1.00", currency="EUR")
    assert (payment.status, payment.reason, payment.wallet_id) == (PaymentStatus.FAILED, "no_wallet", None)
    assert balance(wallet) == Decimal("100.00")
    assert sent.sent[0].payload["reason"] == "no_wallet"


def test_charge_uses_only_the_wallet_of_the_event_instance(other_instance, customer, wallet, sent):
    payment = charge(other_instance, 15, customer.pk, "1.00")
    assert payment.reason == "no_wallet"
    assert balance(wallet) == Decimal("100.00")


def test_charge_for_unknown_customer_fails_with_no_wallet(instance, wallet, sent):
    payment = charge(instance, 16, 987654, "1.00")
    assert (payment.status, payment.reason, payment.customer_id) == (PaymentStatus.FAILED, "no_wallet", None)


@pytest.mark.parametrize("amount", ["-5", "abc", None, "1.234", 2.5])
def test_charge_with_malformed_amount_fails(instance, customer, wallet, sent, amount):
    payment = charge(instance, 17, customer.pk, amount)
    assert (payment.status, payment.reason, payment.amount) == (PaymentStatus.FAILED, "invalid_amount",
                                                                Decimal(0))
    assert balance(wallet) == Decimal("100.00")
    assert sent.sent[0].payload["status"] == "failed"


def test_charge_twice_debits_once_and_sends_once(instance, customer, wallet, sent):
    first = charge(instance, 18, customer.pk, "10.00")
    second = charge(instance, 18, customer.pk, "10.00")
    assert first.pk == second.pk
    assert balance(wallet) == Decimal("90.00")
    assert Payment.objects.count() == 1
    assert sent.names() == ["payment_processed"]


def test_a_charge_is_one_statement_that_debits_writes_the_ledger_and_the_payment(
        instance, customer, wallet, sent, django_assert_num_queries):
    with django_assert_num_queries(2) as ctx:  # the charge, then the outbox's INSERT of event-payment
        payment = charge(instance, 61, customer.pk, "12.50")
    assert "events_outboxevent" in ctx.captured_queries[1]["sql"]
    assert balance(wallet) == Decimal("87.50")
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.amount, stored.wallet_id, stored.customer_id, stored.currency, stored.reason) == (
        PaymentStatus.SUCCEEDED, Decimal("12.50"), wallet.pk, customer.pk, "USD", "")
    assert (payment.status, payment.amount, payment.wallet_id, payment.customer_id, payment.created_at) == (
        stored.status, stored.amount, stored.wallet_id, stored.customer_id, stored.created_at)
    tx = LedgerTransaction.objects.get(order_id=61)
    assert (tx.instance_id, tx.kind, tx.currency, tx.actor_id, tx.reason) == (instance.pk, "charge", "USD", None, "")
    assert sorted(tx.entries.values_list("account", "wallet_id", "currency", "amount")) == [
        ("revenue", None, "USD", Decimal("12.50")), ("wallet", wallet.pk, "USD", Decimal("-12.50"))]


def test_an_insufficient_funds_charge_records_the_wallet_and_moves_no_money(instance, customer, wallet, sent):
    payment = charge(instance, 62, customer.pk, "100.01")
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.reason, stored.wallet_id, stored.amount, stored.customer_id) == (
        PaymentStatus.FAILED, "insufficient_funds", wallet.pk, Decimal("100.01"), customer.pk)
    assert balance(wallet) == Decimal("100.00")
    assert not LedgerTransaction.objects.filter(order_id=62).exists()
    assert LedgerEntry.objects.filter(wallet=wallet).count() == 1  # the opening balance only


def test_a_charge_without_a_wallet_keeps_the_existing_customer_and_moves_no_money(instance, customer, wallet, sent):
    payment = charge(instance, 63, customer.pk, "1.00", currency="EUR")
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.reason, stored.wallet_id, stored.customer_id, stored.currency, stored.amount) == (
        PaymentStatus.FAILED, "no_wallet", None, customer.pk, "EUR", Decimal("1.00"))
    assert not LedgerTransaction.objects.filter(order_id=63).exists()
    assert balance(wallet) == Decimal("100.00")


def test_a_charge_of_zero_succeeds_without_a_ledger_transaction(instance, customer, wallet, sent):
    payment = charge(instance, 64, customer.pk, "0.00")
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert not LedgerTransaction.objects.filter(order_id=64).exists()
    assert balance(wallet) == Decimal("100.00")


def test_a_charge_of_another_instances_order_id_is_its_own_claim(instance, other_instance, customer, wallet, sent):
    wallet_create(instance=other_instance, user=customer, currency="USD", balance="5.00")
    charge(other_instance, 65, customer.pk, "5.00")
    payment = charge(instance, 65, customer.pk, "7.00")  # the same order id in another instance: not a repeat
    assert (payment.status, balance(wallet)) == (PaymentStatus.SUCCEEDED, Decimal("93.00"))
    assert Payment.objects.filter(order_id=65).count() == 2


# --- refund -----------------------------------------------------------------------------------------------------

def test_refund_returns_a_succeeded_charge_once(instance, customer, wallet):
    charge(instance, 21, customer.pk, "40.00")
    assert payment_refund_for_order(instance=instance, order_id=21) is True
    assert balance(wallet) == Decimal("100.00")
    assert payment_refund_for_order(instance=instance, order_id=21) is False
    assert balance(wallet) == Decimal("100.00")
    assert Payment.objects.get(order_id=21).status == PaymentStatus.REFUNDED


def test_refund_of_failed_payment_changes_nothing(instance, customer, wallet):
    charge(instance, 22, customer.pk, "400.00")
    assert payment_refund_for_order(instance=instance, order_id=22) is False
    assert balance(wallet) == Decimal("100.00")
    assert Payment.objects.get(order_id=22).status == PaymentStatus.FAILED


def test_refund_in_another_instance_changes_nothing(instance, other_instance, customer, wallet):
    charge(instance, 23, customer.pk, "40.00")
    assert payment_refund_for_order(instance=other_instance, order_id=23) is False
    assert balance(wallet) == Decimal("60.00")
    assert Payment.objects.get(instance=instance, order_id=23).status == PaymentStatus.SUCCEEDED


def test_cancellation_before_charge_voids_the_order_so_the_late_charge_takes_nothing(instance, customer, wallet,
                                                                                    sent):
    assert payment_refund_for_order(instance=instance, order_id=24) is False
    payment = charge(instance, 24, customer.pk, "40.00")
    assert (payment.status, payment.reason) == (PaymentStatus.VOIDED, "order_canceled")
    assert balance(wallet) == Decimal("100.00")
    assert sent.sent == []


# --- suspicious activity ----------------------------------------------------------------------------------------

def test_third_insufficient_funds_failure_in_a_row_is_reported_once(instance, customer, wallet, sent, settings):
    settings.PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW = 3
    for order_id in (31, 32):
        charge(instance, order_id, customer.pk, "500.00")
    assert "suspicious_activity" not in sent.names()
    charge(instance, 33, customer.pk, "500.00", causation_id="evt-33")
    suspicious = [s for s in sent.sent if s.signal == "suspicious_activity"]
    assert suspicious == [Sent("suspicious_activity", instance.pk, {
        "kind": "repeated_insufficient_funds",
        "detail": "3 charges in a row failed for insufficient funds (last: order 33)",
        "user_id": customer.pk}, "evt-33")]
    charge(instance, 34, customer.pk, "500.00")
    assert sent.names().count("suspicious_activity") == 1


def test_a_success_breaks_the_streak(instance, customer, wallet, sent, settings):
    settings.PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW = 3
    charge(instance, 41, customer.pk, "500.00")
    charge(instance, 42, customer.pk, "500.00")
    charge(instance, 43, customer.pk, "1.00")
    charge(instance, 44, customer.pk, "500.00")
    charge(instance, 45, customer.pk, "500.00")
    assert "suspicious_activity" not in sent.names()
    charge(instance, 46, customer.pk, "500.00")
    assert sent.names().count("suspicious_activity") == 1


def test_streaks_are_per_customer(instance, customer, wallet, sent, settings):
    settings.PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW = 2
    other = UserFactory()
    wallet_create(instance=instance, user=other, currency="USD")
    charge(instance, 51, customer.pk, "500.00")
    charge(instance, 52, other.pk, "500.00")
    assert "suspicious_activity" not in sent.names()
    charge(instance, 53, other.pk, "500.00")
    assert [s.payload["user_id"] for s in sent.sent if s.signal == "suspicious_activity"] == [other.pk]


def test_top_up_beyond_the_column_limit_is_refused(wallet):
    with pytest.raises(ApplicationError) as err:
        wallet_top_up(wallet=wallet, amount="999999999999.99")
    assert (err.value.code, err.value.status_code) == ("balance_limit", 400)
    assert balance(wallet) == Decimal("100.00")


def test_a_second_charge_of_an_order_finds_the_claim_moves_no_money_and_sends_nothing(
        instance, customer, wallet, sent, django_assert_num_queries):
    first = charge(instance, 71, customer.pk, "30.00")
    with django_assert_num_queries(2):  # the charge's one statement (its claim did nothing), the existing payment
        again = charge(instance, 71, customer.pk, "50.00")
    assert (again.pk, again.status, again.amount) == (first.pk, PaymentStatus.SUCCEEDED, Decimal("30.00"))
    assert balance(wallet) == Decimal("70.00")
    assert len(sent.sent) == 1


def test_a_refund_before_the_charge_leaves_a_voided_tombstone_and_the_late_charge_takes_nothing(
        instance, customer, wallet, sent):
    assert payment_refund_for_order(instance=instance, order_id=72) is False
    late = charge(instance, 72, customer.pk, "30.00")
    assert (late.status, late.reason) == (PaymentStatus.VOIDED, "order_canceled")
    assert balance(wallet) == Decimal("100.00")
    assert sent.sent == []

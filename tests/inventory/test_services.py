from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from inventory.choices import ReservationStatus
from inventory.models import Product, Reservation
from inventory.services import (
    price_quote_record,
    product_create,
    product_restock,
    reservation_commit_for_order,
    reservation_release_for_order,
    reservation_reserve_for_order,
)
from saaskit.errors import ApplicationError
from tests.inventory.support import Sent

pytestmark = pytest.mark.django_db


def stock(product: Product) -> tuple[int, int]:
    product.refresh_from_db()
    return product.stock_on_hand, product.stock_reserved


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)


@pytest.fixture
def pear(instance):
    return product_create(instance=instance, sku="PR", name="Pear", price="2.25", stock_on_hand=3)


def reserve(instance, order_id, lines, *, currency="USD", customer_id=7, causation_id=None):
    return reservation_reserve_for_order(instance=instance, order_id=order_id, customer_id=customer_id,
                                         lines=lines, currency=currency, causation_id=causation_id)


# --- products ---------------------------------------------------------------------------------------------------

def test_product_create_stores_exact_fields(instance):
    product = product_create(instance=instance, sku=" A-1 ", name="Widget", price="19.99", currency="EUR",
                             stock_on_hand=4)
    product.refresh_from_db()
    assert (product.instance_id, product.sku, product.name, product.price, product.currency) == (
        instance.pk, "A-1", "Widget", Decimal("19.99"), "EUR")
    assert stock(product) == (4, 0)


def test_product_create_duplicate_sku_in_same_instance_is_409_and_creates_nothing(instance, apple):
    with pytest.raises(ApplicationError) as err:
        product_create(instance=instance, sku="APL", name="Other", price="1.00")
    assert (err.value.code, err.value.status_code) == ("sku_taken", 409)
    assert list(Product.objects.values_list("name", flat=True)) == ["Apple"]


def test_product_create_same_sku_in_another_instance_is_allowed(apple, other_instance):
    product = product_create(instance=other_instance, sku="APL", name="Apple", price="1.50")
    assert Product.objects.filter(sku="APL").count() == 2
    assert product.instance_id == other_instance.pk


@pytest.mark.parametrize("price", ["-1", "1.001", "abc", "NaN", "Infinity", "10000000000"])
def test_product_create_rejects_bad_price(instance, price):
    with pytest.raises(ApplicationError) as err:
        product_create(instance=instance, sku="X", name="X", price=price)
    assert (err.value.code, err.value.status_code) == ("invalid_price", 400)
    assert Product.objects.count() == 0


@pytest.mark.parametrize("currency", ["usd", "US", "EURO", "", None])
def test_product_create_rejects_bad_currency(instance, currency):
    with pytest.raises(ApplicationError) as err:
        product_create(instance=instance, sku="X", name="X", price="1", currency=currency)
    assert err.value.code == "invalid_currency"
    assert Product.objects.count() == 0


@pytest.mark.parametrize("sku", ["", "   ", "x" * 65])
def test_product_create_rejects_bad_sku(instance, sku):
    with pytest.raises(ApplicationError) as err:
        product_create(instance=instance, sku=sku, name="X", price="1")
    assert err.value.code == "invalid_sku"


def test_product_restock_adds_to_on_hand_only(apple):
    product_restock(product=apple, quantity=5)
    assert stock(apple) == (15, 0)


@pytest.mark.parametrize("quantity", [0, -3, True, "5", 2**31])
def test_product_restock_rejects_bad_quantity_and_changes_nothing(apple, quantity):
    with pytest.raises(ApplicationError) as err:
        product_restock(product=apple, quantity=quantity)
    assert err.value.code == "invalid_quantity"
    assert stock(apple) == (10, 0)


@pytest.mark.parametrize("update", [
    {"stock_on_hand": -1},
    {"stock_reserved": -1},
    {"stock_reserved": F("stock_on_hand") + 1},
])
def test_stock_check_constraints_refuse_impossible_stock(apple, update):
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=apple.pk).update(**update)
    assert stock(apple) == (10, 0)


# --- reserve ----------------------------------------------------------------------------------------------------

def test_reserve_holds_every_line_and_sends_product_reserved(instance, apple, pear, sent):
    reservation = reserve(instance, 41, [{"product_id": apple.pk, "quantity": 4}, {"product_id": pear.pk, "quantity": 3}],
                          causation_id="evt-1")
    assert stock(apple) == (10, 4)
    assert stock(pear) == (3, 3)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.RESERVED
    assert reservation.amount == Decimal("12.75")
    assert reservation.lines == [
        {"product_id": apple.pk, "quantity": 4, "unit_price": "1.50"},
        {"product_id": pear.pk, "quantity": 3, "unit_price": "2.25"},
    ]
    assert sent.sent == [Sent("product_reserved", instance.pk,
                              {"order_id": 41, "customer_id": 7, "amount": "12.75", "currency": "USD"}, "evt-1")]


def test_reserve_charges_the_quoted_prices_not_todays(instance, apple, pear, sent):
    price_quote_record(instance=instance, order_id=42, currency="USD",
                       lines=[(apple.pk, 2, Decimal("1.50")), (pear.pk, 1, Decimal("2.25"))])
    Product.objects.filter(pk__in=[apple.pk, pear.pk]).update(price=Decimal("99.00"))

    reservation = reserve(instance, 42, [{"product_id": apple.pk, "quantity": 2}, {"product_id": pear.pk, "quantity": 1}])

    assert (reservation.status, reservation.amount) == (ReservationStatus.RESERVED, Decimal("5.25"))
    assert reservation.lines == [{"product_id": apple.pk, "quantity": 2, "unit_price": "1.50"},
                                 {"product_id": pear.pk, "quantity": 1, "unit_price": "2.25"}]
    assert sent.sent[0].payload["amount"] == "5.25"


def test_reserve_of_lines_outside_the_quote_is_rejected_and_holds_nothing(instance, apple, pear, sent):
    price_quote_record(instance=instance, order_id=43, currency="USD", lines=[(apple.pk, 1, Decimal("1.50"))])

    reservation = reserve(instance, 43, [{"product_id": pear.pk, "quantity": 1}])

    assert (reservation.status, reservation.reason) == (ReservationStatus.REJECTED, "invalid_lines")
    assert stock(pear) == (3, 0)
    assert sent.names() == ["product_reservation_failed"]


def test_reserve_merges_repeated_products(instance, apple, sent):
    reservation = reserve(instance, 1, [{"product_id": apple.pk, "quantity": 2}, {"product_id": apple.pk, "quantity": 3}])
    assert stock(apple) == (10, 5)
    assert reservation.lines == [{"product_id": apple.pk, "quantity": 5, "unit_price": "1.50"}]
    assert sent.sent[0].payload["amount"] == "7.50"


def test_reserve_is_all_or_nothing(instance, apple, pear, sent):
    reservation = reserve(instance, 42, [{"product_id": apple.pk, "quantity": 4}, {"product_id": pear.pk, "quantity": 4}],
                          causation_id="evt-2")
    assert stock(apple) == (10, 0)
    assert stock(pear) == (3, 0)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.reason, reservation.lines) == (ReservationStatus.REJECTED,
                                                                           "insufficient_stock", [])
    assert sent.sent == [Sent("product_reservation_failed", instance.pk,
                              {"order_id": 42, "reason": "insufficient_stock"}, "evt-2")]


def test_reserve_counts_stock_already_reserved(instance, pear, sent):
    reserve(instance, 1, [{"product_id": pear.pk, "quantity": 2}])
    reserve(instance, 2, [{"product_id": pear.pk, "quantity": 2}])
    assert stock(pear) == (3, 2)
    assert sent.names() == ["product_reserved", "product_reservation_failed"]


def test_reserve_unknown_or_foreign_product_fails(instance, other_instance, apple, sent):
    foreign = product_create(instance=other_instance, sku="F", name="F", price="1", stock_on_hand=5)
    reserve(instance, 43, [{"product_id": apple.pk, "quantity": 1}, {"product_id": foreign.pk, "quantity": 1}])
    assert stock(apple) == (10, 0)
    assert stock(foreign) == (5, 0)
    assert sent.sent == [Sent("product_reservation_failed", instance.pk, {"order_id": 43, "reason": "unknown_product"},
                              None)]


def test_reserve_in_another_currency_fails(instance, apple, sent):
    reserve(instance, 44, [{"product_id": apple.pk, "quantity": 1}], currency="EUR")
    assert stock(apple) == (10, 0)
    assert sent.sent[0].payload == {"order_id": 44, "reason": "currency_mismatch"}


@pytest.mark.parametrize("lines", [
    [], None, "x", [1], [{"product_id": 1}], [{"product_id": "1", "quantity": 1}],
    [{"product_id": 1, "quantity": 0}], [{"product_id": 1, "quantity": True}], [{"product_id": 1, "quantity": -2}],
])
def test_reserve_malformed_lines_fails_cleanly(instance, apple, sent, lines):
    reservation = reserve(instance, 45, lines)
    assert reservation.status == ReservationStatus.REJECTED
    assert stock(apple) == (10, 0)
    assert sent.sent[0].payload == {"order_id": 45, "reason": "invalid_lines"}


def test_reserve_twice_changes_nothing_and_sends_nothing(instance, apple, sent):
    first = reserve(instance, 46, [{"product_id": apple.pk, "quantity": 2}])
    sent.clear()
    second = reserve(instance, 46, [{"product_id": apple.pk, "quantity": 2}])
    assert second.pk == first.pk
    assert stock(apple) == (10, 2)
    assert Reservation.objects.count() == 1
    assert sent.sent == []


def test_reserve_after_rejection_stays_rejected_even_after_restock(instance, apple, sent):
    reserve(instance, 47, [{"product_id": apple.pk, "quantity": 11}])
    product_restock(product=apple, quantity=5)
    sent.clear()
    reservation = reserve(instance, 47, [{"product_id": apple.pk, "quantity": 11}])
    assert reservation.status == ReservationStatus.REJECTED
    assert stock(apple) == (15, 0)
    assert sent.sent == []


def test_same_order_id_in_two_instances_is_two_reservations(instance, other_instance, apple):
    other_apple = product_create(instance=other_instance, sku="APL", name="Apple", price="1", stock_on_hand=2)
    reserve(instance, 48, [{"product_id": apple.pk, "quantity": 1}])
    reserve(other_instance, 48, [{"product_id": other_apple.pk, "quantity": 1}])
    assert (stock(apple), stock(other_apple)) == ((10, 1), (2, 1))


# --- commit / release -------------------------------------------------------------------------------------------

def test_commit_takes_reserved_units_off_the_shelf_once(instance, apple, pear):
    reserve(instance, 50, [{"product_id": apple.pk, "quantity": 4}, {"product_id": pear.pk, "quantity": 1}])
    assert reservation_commit_for_order(instance=instance, order_id=50) is True
    assert (stock(apple), stock(pear)) == ((6, 0), (2, 0))
    assert reservation_commit_for_order(instance=instance, order_id=50) is False
    assert (stock(apple), stock(pear)) == ((6, 0), (2, 0))
    assert Reservation.objects.get(order_id=50).status == ReservationStatus.COMMITTED


def test_commit_without_reservation_or_of_another_instance_changes_nothing(instance, other_instance, apple):
    reserve(instance, 51, [{"product_id": apple.pk, "quantity": 4}])
    assert reservation_commit_for_order(instance=other_instance, order_id=51) is False
    assert reservation_commit_for_order(instance=instance, order_id=999) is False
    assert stock(apple) == (10, 4)


def test_release_of_reserved_restores_stock_once(instance, apple, pear):
    reserve(instance, 52, [{"product_id": apple.pk, "quantity": 4}, {"product_id": pear.pk, "quantity": 3}])
    assert reservation_release_for_order(instance=instance, order_id=52, reason="payment_failed") is True
    assert (stock(apple), stock(pear)) == ((10, 0), (3, 0))
    assert reservation_release_for_order(instance=instance, order_id=52, reason="payment_failed") is False
    assert (stock(apple), stock(pear)) == ((10, 0), (3, 0))
    reservation = Reservation.objects.get(order_id=52)
    assert (reservation.status, reservation.reason) == (ReservationStatus.RELEASED, "payment_failed")


def test_release_of_committed_returns_units_to_the_shelf(instance, apple):
    reserve(instance, 53, [{"product_id": apple.pk, "quantity": 4}])
    reservation_commit_for_order(instance=instance, order_id=53)
    assert reservation_release_for_order(instance=instance, order_id=53) is True
    assert stock(apple) == (10, 0)
    assert reservation_release_for_order(instance=instance, order_id=53) is False
    assert stock(apple) == (10, 0)


def test_commit_after_release_changes_nothing(instance, apple):
    reserve(instance, 54, [{"product_id": apple.pk, "quantity": 4}])
    reservation_release_for_order(instance=instance, order_id=54)
    assert reservation_commit_for_order(instance=instance, order_id=54) is False
    assert stock(apple) == (10, 0)
    assert Reservation.objects.get(order_id=54).status == ReservationStatus.RELEASED


def test_release_before_reservation_leaves_a_tombstone_so_a_late_order_reserves_nothing(instance, apple, sent):
    assert reservation_release_for_order(instance=instance, order_id=55, reason="customer_request") is False
    reservation = reserve(instance, 55, [{"product_id": apple.pk, "quantity": 4}])
    assert (reservation.status, reservation.lines) == (ReservationStatus.RELEASED, [])
    assert stock(apple) == (10, 0)
    assert sent.sent == []


def test_release_of_rejected_changes_nothing(instance, apple):
    reserve(instance, 56, [{"product_id": apple.pk, "quantity": 40}])
    assert reservation_release_for_order(instance=instance, order_id=56) is False
    assert Reservation.objects.get(order_id=56).status == ReservationStatus.REJECTED
    assert stock(apple) == (10, 0)


def test_commit_and_release_in_either_order_converge(instance, apple):
    reserve(instance, 57, [{"product_id": apple.pk, "quantity": 3}])
    reserve(instance, 58, [{"product_id": apple.pk, "quantity": 3}])
    reservation_commit_for_order(instance=instance, order_id=57)
    reservation_release_for_order(instance=instance, order_id=57)
    reservation_release_for_order(instance=instance, order_id=58)
    reservation_commit_for_order(instance=instance, order_id=58)
    assert stock(apple) == (10, 0)
    assert set(Reservation.objects.values_list("status", flat=True)) == {ReservationStatus.RELEASED}


def test_restock_beyond_the_column_limit_is_refused(apple):
    with pytest.raises(ApplicationError) as err:
        product_restock(product=apple, quantity=2**31 - 10)
    assert (err.value.code, err.value.status_code) == ("stock_limit", 400)
    assert stock(apple) == (10, 0)


def test_reserve_refuses_an_amount_beyond_the_column_limit(instance, sent):
    gold = product_create(instance=instance, sku="AU", name="Gold", price="9999999999.99", stock_on_hand=1000)
    reservation = reserve(instance, 60, [{"product_id": gold.pk, "quantity": 1000}])
    assert (reservation.status, reservation.reason) == (ReservationStatus.REJECTED, "amount_too_large")
    assert stock(gold) == (1000, 0)
    assert sent.sent[0].payload == {"order_id": 60, "reason": "amount_too_large"}


def test_reserve_reads_the_quote_of_its_own_instance_only(instance, other_instance, apple, sent):
    """The quote is read in the products' locking statement, scoped by instance: another instance's quote for the
    same order id is not this order's (today's price applies: this order was placed without one)."""
    price_quote_record(instance=other_instance, order_id=44, currency="USD", lines=[(apple.pk, 1, Decimal("0.01"))])

    reservation = reserve(instance, 44, [{"product_id": apple.pk, "quantity": 2}])

    assert (reservation.status, reservation.amount) == (ReservationStatus.RESERVED, Decimal("3.00"))
    assert stock(apple) == (10, 2)


def test_reserve_claims_in_one_statement_and_a_second_call_returns_the_row_changing_nothing(
        instance, apple, sent, django_assert_num_queries):
    first = reserve(instance, 45, [{"product_id": apple.pk, "quantity": 1}])
    with django_assert_num_queries(2):  # the claim (ON CONFLICT DO NOTHING), then the existing row
        again = reserve(instance, 45, [{"product_id": apple.pk, "quantity": 3}])
    assert (again.pk, again.status, again.amount) == (first.pk, ReservationStatus.RESERVED, Decimal("1.50"))
    assert stock(apple) == (10, 1)
    assert len(sent.sent) == 1


def test_reserve_is_the_claim_with_the_locks_then_the_hold_then_the_event(
        instance, apple, pear, sent, django_assert_num_queries):
    price_quote_record(instance=instance, order_id=46, currency="USD",
                       lines=[(apple.pk, 2, Decimal("1.00")), (pear.pk, 1, Decimal("2.00"))])
    with django_assert_num_queries(3) as ctx:
        reservation = reserve(instance, 46, [{"product_id": pear.pk, "quantity": 1},
                                             {"product_id": apple.pk, "quantity": 2}])
    assert "inventory_reservation_claim" in ctx.captured_queries[0]["sql"]
    assert "events_outboxevent" in ctx.captured_queries[2]["sql"]
    stored = Reservation.objects.get(pk=reservation.pk)
    assert (stored.status, stored.amount, stored.currency, stored.order_id, stored.instance_id) == (
        ReservationStatus.RESERVED, Decimal("4.00"), "USD", 46, instance.pk)
    assert (stock(apple), stock(pear)) == ((10, 2), (3, 1))


def test_reserve_with_no_known_product_claims_rejected_and_locks_nothing(instance, other_instance, sent):
    foreign = product_create(instance=other_instance, sku="F", name="F", price="1.00", stock_on_hand=5)
    reservation = reserve(instance, 47, [{"product_id": foreign.pk, "quantity": 1},
                                         {"product_id": 987654, "quantity": 1}])
    stored = Reservation.objects.get(pk=reservation.pk)
    assert (stored.status, stored.reason, stored.lines, stored.amount) == (
        ReservationStatus.REJECTED, "unknown_product", [], Decimal("0"))
    assert stock(foreign) == (5, 0)
    assert sent.names() == ["product_reservation_failed"]


def test_reserve_of_malformed_lines_still_claims_the_order_once(instance, apple, sent):
    first = reserve(instance, 48, "not lines")
    again = reserve(instance, 48, [{"product_id": apple.pk, "quantity": 1}])
    assert (again.pk, again.status, again.reason) == (first.pk, ReservationStatus.REJECTED, "invalid_lines")
    assert stock(apple) == (10, 0)
    assert sent.names() == ["product_reservation_failed"]


def test_commit_is_one_statement_and_skips_a_product_gone_meanwhile(
        instance, apple, pear, django_assert_num_queries):
    reserve(instance, 49, [{"product_id": apple.pk, "quantity": 2}, {"product_id": pear.pk, "quantity": 1}])
    Reservation.objects.filter(order_id=49).update(lines=[
        {"product_id": apple.pk, "quantity": 2, "unit_price": "1.50"},
        {"product_id": 987654, "quantity": 1, "unit_price": "2.25"}])  # as if pear had been deleted meanwhile
    with django_assert_num_queries(1):
        assert reservation_commit_for_order(instance=instance, order_id=49) is True
    assert (stock(apple), stock(pear)) == ((8, 0), (3, 1))
    with django_assert_num_queries(1):  # nothing matched: nothing moves
        assert reservation_commit_for_order(instance=instance, order_id=49) is False
    assert Reservation.objects.get(order_id=49).status == ReservationStatus.COMMITTED
    assert (stock(apple), stock(pear)) == ((8, 0), (3, 1))


def test_commit_moves_only_its_own_instances_products(instance, other_instance, apple):
    foreign = product_create(instance=other_instance, sku="F", name="F", price="1.00", stock_on_hand=5)
    reserve(instance, 50, [{"product_id": apple.pk, "quantity": 1}])
    Reservation.objects.filter(order_id=50).update(lines=[
        {"product_id": apple.pk, "quantity": 1, "unit_price": "1.50"},
        {"product_id": foreign.pk, "quantity": 1, "unit_price": "1.00"}])
    assert reservation_commit_for_order(instance=instance, order_id=50) is True
    assert (stock(apple), stock(foreign)) == ((9, 0), (5, 0))


def test_release_keeps_the_reason_and_a_second_release_moves_nothing(instance, apple):
    reserve(instance, 51, [{"product_id": apple.pk, "quantity": 3}])
    reservation_commit_for_order(instance=instance, order_id=51)
    assert reservation_release_for_order(instance=instance, order_id=51, reason="customer") is True
    assert reservation_release_for_order(instance=instance, order_id=51, reason="other") is False
    stored = Reservation.objects.get(order_id=51)
    assert (stored.status, stored.reason, stock(apple)) == (ReservationStatus.RELEASED, "customer", (10, 0))

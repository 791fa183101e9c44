"""``saaskit.db``: the single statements the saga's hot paths use where the ORM needs several round trips."""

from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, transaction

from inventory.choices import ReservationStatus
from inventory.models import PriceQuote, Reservation
from orders.choices import OrderEventKind
from orders.models import Order, OrderEvent, OrderLine
from payments.models import LedgerEntry, LedgerTransaction
from saaskit.db import insert_or_nothing, insert_tree, insert_with_children
from tests.factories import InstanceFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_insert_or_nothing_inserts_once_and_then_leaves_the_row_alone(django_assert_num_queries):
    instance = InstanceFactory()
    first = Reservation(instance=instance, order_id=1, status=ReservationStatus.RESERVED, currency="USD")
    with django_assert_num_queries(1):
        assert insert_or_nothing(first, conflict=("instance", "order_id")) is True
    assert first.pk is not None and first._state.adding is False and first.created_at is not None
    second = Reservation(instance=instance, order_id=1, status=ReservationStatus.RELEASED, reason="x")
    assert insert_or_nothing(second, conflict=("instance", "order_id")) is False
    assert second.pk is None
    assert list(Reservation.objects.values_list("pk", "status", "reason", "lines")) == [
        (first.pk, ReservationStatus.RESERVED, "", [])]
    first.lines = [{"product_id": 1}]
    first.save(update_fields=["lines"])  # a row inserted this way saves like any other
    assert Reservation.objects.get().lines == [{"product_id": 1}]


def test_insert_or_nothing_still_enforces_the_other_constraints():
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_or_nothing(Reservation(instance_id=2**40, order_id=1, status="reserved"),
                          conflict=("instance", "order_id"))
        from django.db import connection
        connection.check_constraints()


def test_insert_with_children_writes_all_in_one_statement_with_nulls_typed(django_assert_num_queries):
    instance = InstanceFactory()
    tx = LedgerTransaction(instance=instance, kind="top_up", currency="USD", order_id=None)
    entries = [LedgerEntry(instance=instance, account="funding", wallet_id=None, currency="USD",
                           amount=Decimal("-2.50")),
               LedgerEntry(instance=instance, account="revenue", wallet_id=None, currency="USD",
                           amount=Decimal("2.50"))]
    with django_assert_num_queries(1):
        insert_with_children(tx, entries, link="transaction")
    assert tx.pk is not None and [e.transaction_id for e in entries] == [tx.pk, tx.pk]
    assert sorted(LedgerEntry.objects.filter(transaction=tx).values_list("pk", "account", "amount")) == sorted(
        (e.pk, e.account, e.amount) for e in entries)
    assert LedgerTransaction.objects.get(pk=tx.pk).order_id is None


def test_insert_with_children_is_all_or_nothing():
    instance = InstanceFactory()
    tx = LedgerTransaction(instance=instance, kind="top_up", currency="USD")
    bad = LedgerEntry(instance=instance, account="x" * 17, currency="USD", amount=Decimal("1"))  # too long
    with pytest.raises(DataError), transaction.atomic():
        insert_with_children(tx, [bad], link="transaction")
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count()) == (0, 0)


def test_insert_tree_writes_groups_of_several_models_and_reads_the_state_before_it(django_assert_num_queries):
    instance, customer = InstanceFactory(), UserFactory()
    earlier = Order.objects.create(instance=instance, customer=customer, currency="USD", total=Decimal("3.00"))
    order = Order(instance=instance, customer=customer, currency="USD", total=Decimal("5.00"))
    lines = [OrderLine(product_id=7, quantity=1, unit_price=Decimal("2.00")),
             OrderLine(product_id=3, quantity=1, unit_price=Decimal("3.00"))]
    quote = PriceQuote(instance=instance, currency="USD", amount=Decimal("5.00"), lines=[])
    entry = OrderEvent(kind=OrderEventKind.PLACED, detail={"total": "5.00"})
    with django_assert_num_queries(1):
        seen = insert_tree(order, [(lines, "order"), ([quote], "order_id"), ([entry], "order")],
                           read=("ARRAY(SELECT id FROM orders_order WHERE instance_id = %s ORDER BY id)",
                                 [instance.pk]))
    assert seen == [earlier.pk]  # the statement does not see the order it inserts
    assert order.pk > earlier.pk and not order._state.adding
    assert [(line.order_id, line.order is order) for line in lines] == [(order.pk, True)] * 2
    assert sorted(OrderLine.objects.filter(order=order).values_list("pk", "product_id")) == sorted(
        (line.pk, line.product_id) for line in lines)
    assert PriceQuote.objects.get(pk=quote.pk).order_id == order.pk == quote.order_id
    assert OrderEvent.objects.get(pk=entry.pk).order_id == order.pk
    assert Order.objects.get(pk=order.pk).total == Decimal("5.00")


def test_insert_tree_without_read_returns_none_and_is_all_or_nothing():
    instance, customer = InstanceFactory(), UserFactory()
    order = Order(instance=instance, customer=customer, currency="USD", total=Decimal("1.00"))
    assert insert_tree(order, [([OrderEvent(kind=OrderEventKind.PLACED)], "order")]) is None
    before = (Order.objects.count(), OrderLine.objects.count(), OrderEvent.objects.count())
    again = Order(instance=instance, customer=customer, currency="USD", total=Decimal("1.00"))
    twice = [OrderLine(product_id=1, quantity=1), OrderLine(product_id=1, quantity=2)]  # one line per product
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_tree(again, [(twice, "order"), ([OrderEvent(kind=OrderEventKind.PLACED)], "order")])
    assert (Order.objects.count(), OrderLine.objects.count(), OrderEvent.objects.count()) == before

"""``events.consumers.event_instance``: the event's Instance, cached per process (a statement saved per delivery)
without losing the "instance gone" check."""

import dataclasses

import pytest
from django.db import IntegrityError, connection, transaction

from events import consumers
from events.consumers import event_instance
from inventory.consumers import reserve_for_order
from inventory.models import Reservation
from tests.factories import InstanceFactory
from tests.orders.harness import make_event

pytestmark = pytest.mark.django_db


def event_of(instance_id, slug=None):
    event = make_event("event-order-approved", {"order_id": 1}, instance_id)
    return dataclasses.replace(event, instance_slug=slug)


def delete_behind_the_cache(instance_id):
    """What another process's deletion looks like from here: the row goes, no signal reaches this process."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_instance WHERE id = %s", [instance_id])


def test_the_second_lookup_of_an_instance_runs_no_statement(django_assert_num_queries):
    instance = InstanceFactory()
    with django_assert_num_queries(1):
        assert event_instance(event_of(instance.pk, instance.slug)) == instance
    with django_assert_num_queries(0):
        found = event_instance(event_of(instance.pk, instance.slug))
    assert (found.pk, found.slug) == (instance.pk, instance.slug)


def test_an_event_without_instance_or_with_an_unknown_one_gets_none(django_assert_num_queries):
    assert event_instance(event_of(None)) is None
    with django_assert_num_queries(2):  # a miss is not cached: asked again each time
        assert event_instance(event_of(2**40)) is None
        assert event_instance(event_of(2**40)) is None


def test_deleting_the_instance_in_this_process_drops_it_at_once():
    instance = InstanceFactory()
    pk = instance.pk
    assert event_instance(event_of(pk)) == instance
    instance.delete()
    assert event_instance(event_of(pk)) is None


def test_renaming_the_slug_drops_the_entry_and_an_event_naming_another_slug_looks_again(django_assert_num_queries):
    instance = InstanceFactory(slug="before")
    event_instance(event_of(instance.pk, "before"))
    instance.slug = "after"
    instance.save()
    with django_assert_num_queries(1):
        assert event_instance(event_of(instance.pk, "after")).slug == "after"
    consumers._instance_cache[instance.pk][1].slug = "stale"  # as if renamed by another process
    with django_assert_num_queries(1):
        assert event_instance(event_of(instance.pk, "after")).slug == "after"


def test_an_instance_deleted_by_another_process_is_seen_gone_once_the_entry_expires(monkeypatch, settings):
    settings.EVENTS_INSTANCE_CACHE_SECONDS = 5
    instance = InstanceFactory()
    clock = [1000.0]
    monkeypatch.setattr(consumers.time, "monotonic", lambda: clock[0])
    assert event_instance(event_of(instance.pk)) == instance
    delete_behind_the_cache(instance.pk)
    clock[0] += 4.9
    assert event_instance(event_of(instance.pk)) is not None  # still cached: writes for it fail (next test)
    clock[0] += 0.2
    assert event_instance(event_of(instance.pk)) is None


def test_writes_for_an_instance_gone_behind_the_cache_fail_loudly_and_write_nothing():
    instance = InstanceFactory()
    event = make_event("event-order-created", {"order_id": 7, "customer_id": 3, "currency": "USD",
                                               "lines": [{"product_id": 1, "quantity": 1}]}, instance.pk)
    assert event_instance(event) == instance
    delete_behind_the_cache(instance.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        reserve_for_order(event)
        connection.check_constraints()  # what COMMIT does with the deferred foreign keys
    assert not Reservation.objects.filter(order_id=7).exists()


def test_a_deactivated_instance_is_still_found_so_its_sagas_end():
    instance = InstanceFactory(is_active=False)
    assert event_instance(event_of(instance.pk)) == instance
    instance.is_active = True
    instance.save()
    instance.is_active = False
    instance.save()
    assert event_instance(event_of(instance.pk)).is_active is False


def test_a_zero_ttl_turns_the_cache_off(settings, django_assert_num_queries):
    settings.EVENTS_INSTANCE_CACHE_SECONDS = 0
    instance = InstanceFactory()
    with django_assert_num_queries(2):
        event_instance(event_of(instance.pk))
        event_instance(event_of(instance.pk))

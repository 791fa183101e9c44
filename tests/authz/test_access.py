import pytest

from authz import services
from authz.access import can, filter_visible
from authz.cache import watcher
from authz.models import Policy, Resource
from inventory.models import Product
from inventory.services import product_create
from tests.factories import ProfileFactory, context_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_watcher(feed):
    watcher.stop()
    yield
    watcher.stop()


def products(instance, n):
    return [product_create(instance=instance, sku=f"sku-{i}", name=f"p{i}", price="1.00") for i in range(n)]


def test_can_with_a_model_instance(instance):
    profile = ProfileFactory(instance=instance, role="customer")
    resource = services.resource_create(instance=instance, name="r")
    services.policies_upsert(instance=instance, policies=[f"{profile.user_id}:update:resources:{resource.pk}"])
    ctx = context_for(profile)

    assert can(ctx, "update", resource) is True
    assert can(ctx, "delete", resource) is False


def test_can_uses_the_acting_role(instance):
    profile = ProfileFactory(instance=instance, role="instance_admin")
    product = products(instance, 1)[0]

    assert can(context_for(profile), "delete", product) is True
    assert can(context_for(profile, role="customer"), "delete", product) is False


def test_can_denies_objects_of_another_instance(instance, other_instance):
    profile = ProfileFactory(instance=instance, role="instance_admin")
    foreign = products(other_instance, 1)[0]

    assert can(context_for(profile), "get", foreign) is False


def test_can_with_a_pair(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:cancel:orders:9"])
    ctx = context_for(member.profiles.get())

    assert can(ctx, "cancel", ("orders", 9)) is True
    assert can(ctx, "cancel", ("orders", 10)) is False
    assert can(None, "cancel", ("orders", 9)) is False


def test_filter_visible_uses_policies_without_a_query_per_row(instance, other_instance, member,
                                                              django_assert_max_num_queries):
    mine = products(instance, 5)
    products(other_instance, 2)
    accountant = ProfileFactory(instance=instance, role="accountant")
    services.policies_upsert(instance=instance, policies=[f"{accountant.user_id}:delete:products:{mine[1].pk}",
                                                          f"{accountant.user_id}:delete:products:{mine[3].pk}"])
    ctx = context_for(accountant)

    with django_assert_max_num_queries(2):
        visible = list(filter_visible(ctx, "delete", Product.objects.order_by("pk")).values_list("pk", flat=True))

    assert visible == [mine[1].pk, mine[3].pk]


def test_filter_visible_all_by_role_or_wildcard(instance, other_instance):
    mine = products(instance, 3)
    products(other_instance, 2)
    clerk = ProfileFactory(instance=instance, role="clerk")
    customer = ProfileFactory(instance=instance, role="customer")
    services.policies_upsert(instance=instance, policies=[f"{customer.user_id}:delete:products:*"])

    assert sorted(filter_visible(context_for(clerk), "update", Product.objects.all()).values_list("pk", flat=True)) \
        == [p.pk for p in mine]
    assert filter_visible(context_for(customer), "delete", Product.objects.all()).count() == 3
    assert filter_visible(context_for(customer), "update", Product.objects.all()).count() == 0


def test_filter_visible_folders(instance, member):
    folder = services.resource_create(instance=instance, name="f")
    inner = services.resource_create(instance=instance, name="i", parent_id=folder.pk)
    services.resource_create(instance=instance, name="other")
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:{folder.pk}"])

    visible = filter_visible(context_for(member.profiles.get()), "get", Resource.objects.order_by("pk"))

    assert list(visible.values_list("name", flat=True)) == ["f", "i"]
    assert inner.pk in visible.values_list("pk", flat=True)


def test_deleting_a_domain_object_removes_its_policies(instance, member, updates):
    product = products(instance, 1)[0]
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:products:{product.pk}",
                                                          f"{member.pk}:get:products:*"])

    Product.objects.filter(pk=product.pk).delete()

    assert sorted(p.as_string() for p in Policy.objects.all()) == [f"{member.pk}:get:products:*"]
    assert updates[-1]["resource_types"] == ["products"]


def test_deleting_an_instance_with_objects_and_policies_removes_everything(instance, member):
    from accounts.models import Instance

    product = products(instance, 1)[0]
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:products:{product.pk}"])

    Instance.objects.filter(pk=instance.pk).delete()

    assert Policy.objects.count() == 0
    assert Product.objects.count() == 0

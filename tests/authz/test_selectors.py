import pytest

from authz import selectors, services
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def allowed(instance, user, action, rtype, rid, **kw):
    return selectors.check(instance_id=instance.pk, user_id=user.pk, action=action, resource_type=rtype,
                           resource_id=rid, **kw)


def test_direct_policy_allows_exactly_that(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:15"])

    assert allowed(instance, member, "get", "orders", "15") is True
    assert allowed(instance, member, "get", "orders", "16") is False
    assert allowed(instance, member, "cancel", "orders", "15") is False
    assert allowed(instance, member, "get", "wallets", "15") is False


def test_wildcard_allows_every_object_of_the_type(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:cancel:orders:*"])

    assert allowed(instance, member, "cancel", "orders", "1") is True
    assert allowed(instance, member, "cancel", "orders", "99") is True
    assert allowed(instance, member, "get", "orders", "1") is False


def test_no_access_across_instances(instance, other_instance, member):
    ProfileFactory(user=member, instance=other_instance, role="customer")
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:*"])

    assert allowed(other_instance, member, "get", "orders", "1") is False


def test_a_user_who_left_the_instance_loses_its_policies(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    member.profiles.all().delete()

    assert allowed(instance, member, "get", "orders", "1") is False


def test_group_grant(instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    services.policies_upsert(instance=instance, policies=[f"group/{group.pk}:update:wallets:7"])

    assert allowed(instance, member, "update", "wallets", "7") is True
    assert allowed(instance, member, "update", "wallets", "8") is False


def test_folder_grant_covers_every_depth_and_follows_moves(instance, member):
    a = services.resource_create(instance=instance, name="a")
    b = services.resource_create(instance=instance, name="b")
    child = services.resource_create(instance=instance, name="child", parent_id=a.pk)
    leaf = services.resource_create(instance=instance, name="leaf", parent_id=child.pk)
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:{a.pk}"])

    assert allowed(instance, member, "get", "resources", str(leaf.pk)) is True
    assert allowed(instance, member, "get", "resources", str(b.pk)) is False

    services.resource_move(instance=instance, resource=child, parent_id=b.pk)

    assert allowed(instance, member, "get", "resources", str(leaf.pk)) is False
    assert allowed(instance, member, "get", "resources", str(a.pk)) is True


def test_role_table(instance):
    clerk = ProfileFactory(instance=instance, role="clerk").user
    accountant = ProfileFactory(instance=instance, role="accountant").user
    admin = ProfileFactory(instance=instance, role="instance_admin").user

    assert allowed(instance, clerk, "update", "products", "1") is True
    assert allowed(instance, clerk, "delete", "products", "1") is False
    assert allowed(instance, accountant, "get", "wallets", "1") is True
    assert allowed(instance, accountant, "update", "wallets", "1") is False
    assert allowed(instance, admin, "cancel", "orders", "1") is True
    assert allowed(instance, admin, "delete", "resources", "1") is True


def test_acting_role_replaces_the_profile_role(instance):
    admin = ProfileFactory(instance=instance, role="instance_admin").user

    assert allowed(instance, admin, "cancel", "orders", "1", role="customer") is False


def test_unknown_action_or_type_is_never_allowed(instance):
    admin = ProfileFactory(instance=instance, role="instance_admin").user

    assert allowed(instance, admin, "fly", "orders", "1") is False
    assert allowed(instance, admin, "get", "planes", "1") is False


def test_check_is_one_query(instance, member, django_assert_num_queries):
    a = services.resource_create(instance=instance, name="a")

    with django_assert_num_queries(1):
        allowed(instance, member, "get", "resources", str(a.pk))


def test_explain(instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    folder = services.resource_create(instance=instance, name="f")
    inner = services.resource_create(instance=instance, name="i", parent_id=folder.pk)
    services.policies_upsert(instance=instance, policies=[
        f"{member.pk}:get:orders:1", f"{member.pk}:get:orders:*", f"group/{group.pk}:get:wallets:3",
        f"{member.pk}:update:resources:{folder.pk}"])
    clerk = ProfileFactory(instance=instance, role="clerk").user

    def why(user, action, rtype, rid):
        return selectors.explain(instance_id=instance.pk, user_id=user.pk, action=action, resource_type=rtype,
                                 resource_id=rid).as_dict()

    assert why(member, "get", "orders", "1")["policy"] == f"{member.pk}:get:orders:1"
    assert why(member, "get", "orders", "2")["reason"] == "wildcard"
    assert why(member, "get", "wallets", "3") == {"allowed": True, "reason": "group", "group_id": group.pk,
                                                  "policy": f"group/{group.pk}:get:wallets:3", "role": None,
                                                  "folder_id": None}
    assert why(member, "update", "resources", str(inner.pk))["folder_id"] == folder.pk
    assert why(clerk, "update", "products", "1") == {"allowed": True, "reason": "role", "role": "clerk",
                                                     "policy": None, "group_id": None, "folder_id": None}
    assert why(member, "delete", "orders", "1") == {"allowed": False, "reason": "none", "policy": None,
                                                    "role": None, "group_id": None, "folder_id": None}


def test_subject_grants_expand_groups_and_folders(instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    folder = services.resource_create(instance=instance, name="f")
    inner = services.resource_create(instance=instance, name="i", parent_id=folder.pk)
    services.policies_upsert(instance=instance, policies=[
        f"{member.pk}:get:orders:1", f"group/{group.pk}:get:wallets:3", f"group/{group.pk}:get:resources:{folder.pk}"])

    grants = selectors.subject_grants(instance_id=instance.pk, user_id=member.pk,
                                      resource_types=["orders", "resources"])

    assert grants == frozenset({("orders", "get", "1"), ("resources", "get", str(folder.pk)),
                                ("resources", "get", str(inner.pk))})


def test_subject_objects_and_object_subjects(instance, member):
    other = ProfileFactory(instance=instance, role="customer").user
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[other.pk])
    services.policies_upsert(instance=instance, policies=[
        f"{member.pk}:get:orders:2", f"{member.pk}:get:orders:1", f"group/{group.pk}:get:orders:2",
        f"{member.pk}:cancel:orders:3"])

    assert list(selectors.subject_objects(instance=instance, user_id=member.pk, action="get",
                                          resource_type="orders")) == ["1", "2"]
    assert list(selectors.subject_objects(instance=instance, user_id=other.pk, action="get",
                                          resource_type="orders")) == ["2"]
    assert list(selectors.object_subjects(instance=instance, resource_type="orders", resource_id="2",
                                          action="get")) == sorted([member.pk, other.pk])


def test_object_subjects_count_folders_and_roles(instance, member):
    folder = services.resource_create(instance=instance, name="f")
    inner = services.resource_create(instance=instance, name="i", parent_id=folder.pk)
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:update:resources:{folder.pk}"])
    admin = ProfileFactory(instance=instance, role="instance_admin").user
    ProfileFactory(instance=instance, role="clerk")

    subjects = selectors.object_subjects(instance=instance, resource_type="resources", resource_id=str(inner.pk),
                                         action="update")

    assert list(subjects) == sorted([member.pk, admin.pk])


def test_authorized_by_name(instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    folder = services.resource_create(instance=instance, name="folder")
    services.resource_create(instance=instance, name="inside", parent_id=folder.pk)
    services.resource_create(instance=instance, name="outside")
    services.group_authorize(instance=instance, group=group, resource_ids=[folder.pk])

    def ok(name):
        return selectors.authorized(instance_id=instance.pk, user_id=member.pk, resource_name=name)

    assert (ok("folder"), ok("inside"), ok("outside"), ok("missing")) == (True, True, False, False)


def test_check_many_is_one_query_whatever_the_number_of_subjects(instance, django_assert_num_queries):
    users = [ProfileFactory(instance=instance, role="customer").user for _ in range(30)]
    services.policies_upsert(instance=instance, policies=[f"{users[4].pk}:get:orders:*"])
    checks = [selectors.CheckQuery(u.pk, "get", "orders", "1") for u in users]
    checks.append(selectors.CheckQuery(users[0].pk, "fly", "orders", "1"))

    with django_assert_num_queries(1):
        results = selectors.check_many(instance_id=instance.pk, checks=checks)

    assert [i for i, allowed in enumerate(results) if allowed] == [4]

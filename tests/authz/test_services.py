import pytest
from django.db import transaction

from accounts.models import User
from authz import changefeed, services
from authz.models import GroupMembership, Policy, Resource, ResourceUserObjectPermission
from authz.policy import PolicyError
from saaskit.errors import ApplicationError, NotFoundError
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def policy_strings(instance):
    return sorted(p.as_string() for p in Policy.objects.filter(instance=instance))


def test_upsert_writes_policies_and_sends_one_update(instance, member, updates):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:15", f"{member.pk}:cancel:orders:*"])

    assert policy_strings(instance) == [f"{member.pk}:cancel:orders:*", f"{member.pk}:get:orders:15"]
    assert len(updates) == 1
    assert updates[0]["instance"] == instance.pk
    assert updates[0]["subject_ids"] == [member.pk]
    assert updates[0]["resource_types"] == ["orders"]
    assert isinstance(updates[0]["version"], int)


def test_upsert_is_idempotent(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:15"])
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:15"])

    assert policy_strings(instance) == [f"{member.pk}:get:orders:15"]


def test_versions_increase(instance, member, updates):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:2"])

    assert updates[1]["version"] > updates[0]["version"]


def test_one_bad_string_writes_none(instance, member, updates):
    with pytest.raises(PolicyError) as raised:
        services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:fly:orders:2"])

    assert raised.value.part == "action"
    assert raised.value.index == 1
    assert Policy.objects.count() == 0
    assert updates == []


def test_a_subject_of_another_instance_is_rejected(instance, other_instance):
    outsider = ProfileFactory(instance=other_instance).user

    with pytest.raises(PolicyError) as raised:
        services.policies_upsert(instance=instance, policies=[f"{outsider.pk}:get:orders:1"])

    assert raised.value.code == "unknown_subject"
    assert raised.value.part == "subject"
    assert Policy.objects.count() == 0


def test_a_missing_subject_is_rejected(instance):
    with pytest.raises(PolicyError) as raised:
        services.policies_upsert(instance=instance, policies=["999999:get:orders:1"])

    assert raised.value.code == "unknown_subject"


def test_a_missing_resource_is_rejected(instance, member):
    with pytest.raises(PolicyError) as raised:
        services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:999999"])

    assert raised.value.part == "resource_id"


def test_remove_deletes_only_the_named_policies(instance, member, updates):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:get:orders:2"])

    removed = services.policies_remove(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    assert removed == 1
    assert policy_strings(instance) == [f"{member.pk}:get:orders:2"]
    assert len(updates) == 2


def test_removing_nothing_sends_nothing(instance, member, updates):
    assert services.policies_remove(instance=instance, policies=[f"{member.pk}:get:orders:1"]) == 0
    assert updates == []


def test_change_feed_is_written_after_commit_only(instance, member, feed):
    with transaction.atomic():
        services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
        assert feed.xlen(changefeed.STREAM) == 0
    # pytest-django's test transaction never commits: run the callbacks explicitly below.


def test_change_feed_entry(instance, member, feed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    entries = feed.xrange(changefeed.STREAM)
    assert len(entries) == 1
    change = changefeed.decode(entries[0][1])
    assert change.instance_id == instance.pk
    assert change.subject_ids == frozenset({member.pk})
    assert change.resource_types == frozenset({"orders"})


def test_deleting_a_user_removes_their_policies(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    User.objects.filter(pk=member.pk).delete()

    assert Policy.objects.count() == 0


def test_purge_subject_removes_policies_and_memberships(instance, member, updates):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    assert services.policies_purge_subject(user_id=member.pk) == 1

    assert Policy.objects.count() == 0
    assert GroupMembership.objects.count() == 0
    assert updates[-1]["subject_ids"] == [member.pk]


def test_purge_member_removes_that_instances_grants_only_and_feeds_every_cache(
        instance, other_instance, member, updates, feed, django_capture_on_commit_callbacks):
    ProfileFactory(user=member, instance=other_instance, role="customer")
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    services.policies_upsert(instance=instance, policies=[f"group/{group.pk}:get:wallets:*"])
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    services.policies_upsert(instance=other_instance, policies=[f"{member.pk}:get:orders:2"])
    updates.clear()
    feed.delete(changefeed.STREAM)

    with django_capture_on_commit_callbacks(execute=True):
        removed = services.policies_purge_member(instance=instance, user_id=member.pk)

    assert removed == 1
    assert policy_strings(instance) == [f"group/{group.pk}:get:wallets:*"]
    assert policy_strings(other_instance) == [f"{member.pk}:get:orders:2"]
    assert GroupMembership.objects.filter(user=member).count() == 0
    assert [(u["instance"], u["subject_ids"], u["resource_types"]) for u in updates] == [
        (instance.pk, [member.pk], ["orders", "wallets"])]
    change = changefeed.decode(feed.xrange(changefeed.STREAM)[0][1])
    assert (change.instance_id, change.subject_ids) == (instance.pk, frozenset({member.pk}))


def test_purge_member_with_nothing_to_remove_sends_nothing(instance, member, updates):
    assert services.policies_purge_member(instance=instance, user_id=member.pk) == 0
    assert updates == []


def test_purge_object_removes_its_policies_but_not_wildcards(instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:get:orders:*",
                                                          f"{member.pk}:get:orders:2"])

    assert services.policies_purge_object(resource_type="orders", resource_id="1") == 1

    assert policy_strings(instance) == [f"{member.pk}:get:orders:*", f"{member.pk}:get:orders:2"]


def test_group_names_are_unique_per_instance(instance, other_instance):
    services.group_create(instance=instance, name="ops")
    services.group_create(instance=other_instance, name="ops")

    with pytest.raises(ApplicationError) as raised:
        services.group_create(instance=instance, name="ops")
    assert raised.value.code == "duplicate_name"


def test_adding_a_foreign_user_to_a_group_is_rejected(instance, other_instance):
    group = services.group_create(instance=instance, name="ops")
    outsider = ProfileFactory(instance=other_instance).user

    with pytest.raises(ApplicationError) as raised:
        services.group_add_users(instance=instance, group=group, user_ids=[outsider.pk])

    assert raised.value.code == "unknown_user"
    assert GroupMembership.objects.count() == 0


def test_group_of_another_instance_is_not_found(instance, other_instance, member):
    group = services.group_create(instance=other_instance, name="ops")

    with pytest.raises(NotFoundError):
        services.group_add_users(instance=instance, group=group, user_ids=[member.pk])


def test_group_authorize_grants_get_on_resources(instance):
    group = services.group_create(instance=instance, name="ops")
    resource = services.resource_create(instance=instance, name="r1")

    services.group_authorize(instance=instance, group=group, resource_ids=[resource.pk])

    assert policy_strings(instance) == [f"group/{group.pk}:get:resources:{resource.pk}"]


def test_group_authorize_rejects_foreign_resources(instance, other_instance):
    group = services.group_create(instance=instance, name="ops")
    foreign = services.resource_create(instance=other_instance, name="r1")

    with pytest.raises(ApplicationError) as raised:
        services.group_authorize(instance=instance, group=group, resource_ids=[foreign.pk])

    assert raised.value.code == "resource_not_found"
    assert Policy.objects.count() == 0


def test_resource_paths(instance):
    root = services.resource_create(instance=instance, name="root")
    child = services.resource_create(instance=instance, name="child", parent_id=root.pk)
    leaf = services.resource_create(instance=instance, name="leaf", parent_id=child.pk)

    assert root.path == f"/{root.pk}/"
    assert leaf.path == f"/{root.pk}/{child.pk}/{leaf.pk}/"
    assert leaf.ancestor_ids() == [root.pk, child.pk, leaf.pk]


def test_moving_a_folder_moves_its_subtree(instance):
    a = services.resource_create(instance=instance, name="a")
    b = services.resource_create(instance=instance, name="b")
    child = services.resource_create(instance=instance, name="child", parent_id=a.pk)
    leaf = services.resource_create(instance=instance, name="leaf", parent_id=child.pk)

    services.resource_move(instance=instance, resource=child, parent_id=b.pk)

    leaf.refresh_from_db()
    child.refresh_from_db()
    assert child.parent_id == b.pk
    assert leaf.path == f"/{b.pk}/{child.pk}/{leaf.pk}/"


def test_a_folder_cannot_move_below_itself(instance):
    a = services.resource_create(instance=instance, name="a")
    child = services.resource_create(instance=instance, name="child", parent_id=a.pk)

    with pytest.raises(ApplicationError) as raised:
        services.resource_move(instance=instance, resource=a, parent_id=child.pk)

    assert raised.value.code == "invalid_parent"
    a.refresh_from_db()
    assert a.path == f"/{a.pk}/"


def test_deleting_a_folder_removes_subtree_and_its_policies(instance, member):
    a = services.resource_create(instance=instance, name="a")
    child = services.resource_create(instance=instance, name="child", parent_id=a.pk)
    other = services.resource_create(instance=instance, name="other")
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:{child.pk}",
                                                          f"{member.pk}:get:resources:{other.pk}"])

    assert services.resource_delete(instance=instance, resource=a) == 2

    assert list(Resource.objects.values_list("name", flat=True)) == ["other"]
    assert policy_strings(instance) == [f"{member.pk}:get:resources:{other.pk}"]


def test_user_grants_on_resources_are_mirrored_into_guardian(instance, member):
    from guardian.shortcuts import get_perms

    resource = services.resource_create(instance=instance, name="r")
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:update:resources:{resource.pk}"])

    assert get_perms(member, resource) == ["update"]
    services.policies_remove(instance=instance, policies=[f"{member.pk}:update:resources:{resource.pk}"])
    assert ResourceUserObjectPermission.objects.count() == 0


def test_a_resource_of_another_instance_cannot_be_a_parent(instance, other_instance):
    foreign = services.resource_create(instance=other_instance, name="f")

    with pytest.raises(ApplicationError) as raised:
        services.resource_create(instance=instance, name="x", parent_id=foreign.pk)

    assert raised.value.code == "invalid_parent"
    assert Resource.objects.filter(instance=instance).count() == 0




def test_a_policy_change_writes_event_policy_updated_to_the_outbox(instance, member):
    from events.models import OutboxEvent

    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    rows = list(OutboxEvent.objects.filter(name="event-policy-updated").values_list("payload", flat=True))
    assert len(rows) == 1
    assert rows[0]["subject_ids"] == [member.pk]
    assert rows[0]["resource_types"] == ["orders"]


def test_a_rejected_change_writes_nothing_to_the_outbox(instance, member):
    from events.models import OutboxEvent

    with pytest.raises(PolicyError):
        services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", "x"])

    assert OutboxEvent.objects.filter(name="event-policy-updated").count() == 0


def test_group_grants_on_resources_are_mirrored_into_guardian(instance, member):
    from guardian.shortcuts import get_perms

    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    resource = services.resource_create(instance=instance, name="r")

    services.group_authorize(instance=instance, group=group, resource_ids=[resource.pk])

    assert get_perms(member, resource) == ["get"]
    services.policies_remove(instance=instance, policies=[f"group/{group.pk}:get:resources:{resource.pk}"])
    assert get_perms(member, resource) == []


def test_purging_a_subject_leaves_guardian_groups_too(instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])

    services.policies_purge_subject(user_id=member.pk)

    assert list(member.groups.all()) == []

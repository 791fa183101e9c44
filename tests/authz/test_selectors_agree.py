"""Property tests: ``explain`` and ``check_many`` answer exactly what ``check`` answers, on any ACL.

Each example builds a small world in a savepoint (members in several roles and a non-member, groups,
a folder tree, policies in this and another instance, some written directly as a removed member leaves
them) and compares the three selectors on generated questions.
"""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Profile
from authz import selectors, services
from authz.models import Group, GroupMembership, Policy
from authz.registry import RESOURCE_TYPES
from authz.role_grants import role_allows
from tests.factories import InstanceFactory, UserFactory

pytestmark = pytest.mark.django_db

USERS = 4
GROUPS = 2
FOLDERS = 5
ROLES = [None, "customer", "clerk", "accountant", "instance_admin"]
TYPES = sorted(RESOURCE_TYPES)
ACTIONS = sorted({a for rt in RESOURCE_TYPES.values() for a in rt.actions} | {"fly"})

# a resource id: a folder (by index), a wildcard, an unknown number, a zero-padded folder, junk
resource_refs = st.one_of(
    st.tuples(st.just("folder"), st.integers(0, FOLDERS - 1)),
    st.tuples(st.sampled_from(["*", "999999", "x", "\u00b2", "9" * 25, "0"]), st.none()),
    st.tuples(st.just("padded"), st.integers(0, FOLDERS - 1)),
)
policy_rows = st.tuples(
    st.one_of(st.tuples(st.just("user"), st.integers(0, USERS - 1)),
              st.tuples(st.just("group"), st.integers(0, GROUPS - 1))),
    st.sampled_from(ACTIONS[:-1]), st.sampled_from(TYPES), resource_refs,
    st.booleans(),  # in the other instance
)
worlds = st.fixed_dictionaries({
    "roles": st.lists(st.sampled_from(ROLES), min_size=USERS, max_size=USERS),
    "parents": st.lists(st.integers(-1, FOLDERS - 1), min_size=FOLDERS, max_size=FOLDERS),
    "memberships": st.sets(st.tuples(st.integers(0, USERS - 1), st.integers(0, GROUPS - 1))),
    "policies": st.lists(policy_rows, max_size=12),
    "questions": st.lists(st.tuples(st.integers(0, USERS - 1), st.sampled_from(ACTIONS), st.sampled_from(
        [*TYPES, "planes"]), resource_refs), min_size=1, max_size=12),
})


@pytest.fixture
def places():
    return InstanceFactory(), InstanceFactory(), [UserFactory() for _ in range(USERS)]


def _resource_id(ref, folders):
    kind, value = ref
    if kind == "folder":
        return str(folders[value].pk)
    if kind == "padded":
        return f"00{folders[value].pk}"
    return kind


def _build(world, instance, other, users):
    for user, role in zip(users, world["roles"], strict=True):
        if role is not None:
            Profile.objects.create(user=user, instance=instance, role=role)
        Profile.objects.create(user=user, instance=other, role="customer")
    folders = []
    for index, parent in enumerate(world["parents"]):
        parent_id = folders[parent].pk if 0 <= parent < index else None
        folders.append(services.resource_create(instance=instance, name=f"f{index}", parent_id=parent_id))
    groups = [Group.objects.create(instance=instance, name=f"g{i}") for i in range(GROUPS)]
    for user_index, group_index in world["memberships"]:
        GroupMembership.objects.create(user=users[user_index], group=groups[group_index])
    other_group = Group.objects.create(instance=other, name="g-other")
    for (kind, index), action, rtype, ref, elsewhere in world["policies"]:
        subject = {"user": users[index]} if kind == "user" else {
            "group": other_group if elsewhere else groups[index]}
        Policy.objects.get_or_create(instance=other if elsewhere else instance, resource_type=rtype, action=action,
                                     resource_id=_resource_id(ref, folders), **subject)
    return folders


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds)
def test_explain_and_check_many_agree_with_check(places, world):
    instance, other, users = places
    with transaction.atomic():
        folders = _build(world, instance, other, users)
        questions = [selectors.CheckQuery(users[u].pk, action, rtype, _resource_id(ref, folders))
                     for u, action, rtype, ref in world["questions"]]

        checked = [selectors.check(instance_id=instance.pk, user_id=q.user_id, action=q.action,
                                   resource_type=q.resource_type, resource_id=q.resource_id) for q in questions]
        explained = [selectors.explain(instance_id=instance.pk, user_id=q.user_id, action=q.action,
                                       resource_type=q.resource_type, resource_id=q.resource_id).allowed
                     for q in questions]
        batched = selectors.check_many(instance_id=instance.pk, checks=questions)
        loaded = {u.pk: selectors.subject_role_and_grants(instance_id=instance.pk, user_id=u.pk,
                                                          resource_types=sorted(RESOURCE_TYPES)) for u in users}
        cached = []  # what the authz cache answers from a subject's load (its role, grants and folder expansions)
        for q in questions:
            role, grants = loaded[q.user_id]
            cached.append(role is not None and (
                role_allows(role, q.action, q.resource_type)
                or bool({(q.resource_type, q.action, q.resource_id), (q.resource_type, q.action, "*")} & grants)))

        transaction.set_rollback(True)
    assert explained == checked
    assert batched == checked
    # the cache answers known (type, action) pairs from a load (others go to ``check``); zero-padded ids are
    # a known difference (``check`` counts the folders above the unpadded id; a load expands canonical ids)
    comparable = [q.resource_type in RESOURCE_TYPES and q.action in RESOURCE_TYPES[q.resource_type].actions
                  and not q.resource_id.startswith("0") for q in questions]
    assert [c for c, ok in zip(cached, comparable, strict=True) if ok] == [
        c for c, ok in zip(checked, comparable, strict=True) if ok]

import pytest

from accounts.api.base import acting_instance
from authz.context import ActingContext
from saaskit.errors import ForbiddenError, NotFoundError
from tests.factories import InstanceFactory, ProfileFactory, UserFactory, context_for

pytestmark = pytest.mark.django_db



def test_a_member_acts_for_their_instance():
    profile = ProfileFactory(role="clerk")

    assert acting_instance(context_for(profile)) == profile.instance


def test_no_instance_in_the_token_asks_for_a_token_for_one():
    profile = ProfileFactory(role="super_admin", instance=None)

    with pytest.raises(ForbiddenError) as raised:
        acting_instance(context_for(profile))
    assert raised.value.code == "instance_token_required"
    assert "POST /api/v1/auth/token" in raised.value.message


def test_an_inactive_instance_is_not_found():
    profile = ProfileFactory(role="clerk", instance__is_active=False)

    with pytest.raises(NotFoundError):
        acting_instance(context_for(profile))


def test_a_token_naming_an_instance_the_user_left_is_not_found():
    profile = ProfileFactory(role="clerk")
    ctx = context_for(profile)
    profile.delete()

    with pytest.raises(NotFoundError):
        acting_instance(ctx)


def test_a_token_for_a_foreign_instance_is_not_found():
    profile = ProfileFactory(role="instance_admin")
    other = InstanceFactory()
    forged = ActingContext(user_id=profile.user_id, instance_id=other.pk, instance_slug=other.slug,
                           role="instance_admin", profile_role="instance_admin")

    with pytest.raises(NotFoundError):
        acting_instance(forged)


def test_super_admin_switched_into_an_instance_acts_for_it():
    admin = ProfileFactory(role="super_admin", instance=None)
    instance = InstanceFactory()
    ctx = ActingContext(user_id=admin.user_id, instance_id=instance.pk, instance_slug=instance.slug,
                        role="instance_admin", profile_role="super_admin")

    assert acting_instance(ctx) == instance


def test_a_claimed_super_admin_without_the_global_profile_is_not_found():
    user = UserFactory()
    instance = InstanceFactory()
    ctx = ActingContext(user_id=user.pk, instance_id=instance.pk, instance_slug=instance.slug,
                        role="instance_admin", profile_role="super_admin")

    with pytest.raises(NotFoundError):
        acting_instance(ctx)


def test_a_member_whose_profile_no_longer_backs_the_role_is_role_stale():
    profile = ProfileFactory(role="instance_admin")
    ctx = context_for(profile)
    profile.role = "customer"
    profile.save()

    with pytest.raises(ForbiddenError) as raised:
        acting_instance(ctx)
    assert raised.value.code == "role_stale"


def test_a_member_switched_down_keeps_acting_after_being_given_that_role():
    profile = ProfileFactory(role="instance_admin")
    ctx = context_for(profile, role="clerk")
    profile.role = "clerk"
    profile.save()

    assert acting_instance(ctx) == profile.instance


def test_the_standing_is_read_once_per_second_per_user_and_instance(django_assert_num_queries):
    profile = ProfileFactory(role="clerk")
    ctx = context_for(profile)

    with django_assert_num_queries(1):
        acting_instance(ctx)
        acting_instance(ctx)
        acting_instance(ctx)

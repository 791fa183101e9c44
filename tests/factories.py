"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

import factory

from accounts.models import Instance, Profile, User
from authz.context import ActingContext

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class InstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instance

    slug = factory.Sequence(lambda n: f"instance-{n}")
    name = factory.Sequence(lambda n: f"Instance {n}")


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    user = factory.SubFactory(UserFactory)
    instance = factory.SubFactory(InstanceFactory)
    role = "customer"


def context_for(profile: Profile, *, role: str | None = None) -> ActingContext:
    """The ActingContext a token for this profile would carry (optionally after a switch to ``role``)."""
    instance = profile.instance
    return ActingContext(
        user_id=profile.user_id,
        instance_id=instance.pk if instance else None,
        instance_slug=instance.slug if instance else None,
        role=role or profile.role,
        profile_role=profile.role,
    )

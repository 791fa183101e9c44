"""``subject_resolve``: an AuthZEN subject's name -> member, from memory when warm, forgotten when the change feed
says a member or the instance changed."""

from __future__ import annotations

import pytest

from accounts.models import Profile
from authzen import selectors
from tests.authzen.conftest import applied
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_names_resolve_from_memory_when_warm_negative_answers_too(synced, instance, django_assert_num_queries):
    member = ProfileFactory(instance=instance, external_id="idp|7", user__email="m@acme.test")
    outsider = ProfileFactory(user__email="out@elsewhere.test")  # a member of another instance only
    names = ["idp|7", str(member.user_id), "M@acme.test", "nobody", str(outsider.user_id), "out@elsewhere.test"]
    expected = [member.user_id, member.user_id, member.user_id, None, None, None]

    counts = selectors.subject_names.counts()

    assert [selectors.subject_resolve(instance_id=instance.pk, subject_id=n) for n in names] == expected
    with django_assert_num_queries(0):
        assert [selectors.subject_resolve(instance_id=instance.pk, subject_id=n) for n in names] == expected
    after = selectors.subject_names.counts()
    assert {k: after[k] - counts[k] for k in after} == {"subject_hits": 6, "subject_misses": 6}


@pytest.mark.parametrize("change", ["external_id_set", "member_added", "member_removed", "email_changed"])
def test_member_changes_reach_the_names_through_the_feed(synced, instance, change,
                                                         django_capture_on_commit_callbacks):
    profile = ProfileFactory(instance=instance, external_id="idp|old", user__email="before@acme.test")
    stranger = UserFactory(email="stranger@acme.test")
    asked = {"external_id_set": "idp|new", "member_added": "stranger@acme.test", "member_removed": "idp|old",
             "email_changed": "after@acme.test"}[change]
    before_answer = selectors.subject_resolve(instance_id=instance.pk, subject_id=asked)
    other = ProfileFactory(external_id="idp|new")  # another instance: its names stay cached
    selectors.subject_resolve(instance_id=other.instance_id, subject_id="idp|new")
    count = synced.applied

    with django_capture_on_commit_callbacks(execute=True):
        if change == "external_id_set":
            profile.external_id = "idp|new"
            profile.save(update_fields=["external_id", "updated_at"])
        elif change == "member_added":
            Profile.objects.create(user=stranger, instance=instance, role="customer")
        elif change == "member_removed":
            profile.delete()
        else:
            profile.user.email = "after@acme.test"
            profile.user.save()
    applied(count)

    after_answer = selectors.subject_resolve(instance_id=instance.pk, subject_id=asked)
    assert (before_answer, after_answer) == {
        "external_id_set": (None, profile.user_id), "member_added": (None, stranger.pk),
        "member_removed": (profile.user_id, None), "email_changed": (None, profile.user_id)}[change]
    assert "idp|new" in selectors.subject_names.by_instance[other.instance_id]


def test_names_are_bounded_oldest_first(synced, instance):
    small = selectors.SubjectNames(max_per_instance=2)
    small.store(instance.pk, "a", 1, synced.generation)
    small.store(instance.pk, "b", None, synced.generation)
    small.store(instance.pk, "c", 3, synced.generation)

    assert small.by_instance[instance.pk] == {"b": None, "c": 3}


def test_a_stale_watcher_sends_names_to_the_database(synced, instance, django_assert_num_queries):
    member = ProfileFactory(instance=instance, external_id="idp|7")
    assert selectors.subject_resolve(instance_id=instance.pk, subject_id="idp|7") == member.user_id
    synced.stop()
    Profile.objects.filter(pk=member.pk).update(external_id="idp|8")  # nobody told the feed

    with django_assert_num_queries(1):
        assert selectors.subject_resolve(instance_id=instance.pk, subject_id="idp|7") is None

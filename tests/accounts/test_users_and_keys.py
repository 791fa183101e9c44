import time

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import Profile, User
from accounts.services.tokens import access_token_issue
from accounts.services.users import user_delete
from accounts.signals import account_deleted
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def test_user_delete_removes_the_user_and_profiles_and_sends_account_deleted():
    profile = ProfileFactory(role="clerk")
    seen = []
    account_deleted.connect(lambda sender, **kw: seen.append(kw["payload"]), weak=False, dispatch_uid="t-del")
    try:
        user_delete(user=profile.user)
    finally:
        account_deleted.disconnect(dispatch_uid="t-del")

    assert seen == [{"user_id": profile.user_id}]
    assert not User.objects.filter(pk=profile.user_id).exists()
    assert not Profile.objects.filter(pk=profile.pk).exists()


def test_a_revocation_written_by_another_process_is_seen_within_one_second():
    """Another process (admin, worker) stamps tokens_not_before; this process's user cache lives 0.5 s."""
    profile = ProfileFactory(role="clerk")
    access = access_token_issue(user_id=profile.user_id, instance=profile.instance, role="clerk",
                                profile_role="clerk", now=time.time() - 5)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get("/api/v1/me").status_code == 200  # the user is now cached in this process

    User.objects.filter(pk=profile.user_id).update(tokens_not_before=timezone.now().replace(microsecond=0))
    time.sleep(0.6)

    assert client.get("/api/v1/me").status_code == 401


def test_jwt_keys_command_rotates_lists_and_prunes(capsys):
    first = keys.KEY_RING.signing_key().kid

    call_command("jwt_keys", "rotate")
    out = capsys.readouterr().out
    newest = keys.KEY_RING.signing_key().kid

    assert newest != first
    assert f"new signing key: {newest}" in out
    assert f"{newest}" in out and f"{first}" in out
    call_command("jwt_keys", "prune")  # within the grace period: the old key stays
    assert "removed: nothing" in capsys.readouterr().out
    assert {k.kid for k in keys.KEY_RING.all_keys()} == {first, newest}

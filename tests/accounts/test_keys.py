"""The signing key ring: a key superseded longer than JWT_KEY_RETIREMENT_GRACE ago stops verifying and
leaves the JWKS even before anyone prunes it; a key removed from the folder stops verifying at once, also
for tokens this process verified (and cached) before."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from accounts import keys
from accounts.services.tokens import InvalidToken, access_token_issue, access_token_verify

pytestmark = pytest.mark.django_db


def write_key(keys_dir: Path, made: datetime, suffix: str) -> tuple[str, Ed25519PrivateKey]:
    """A key file whose kid says it was made at ``made`` (the way ``generate_key`` names keys)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    kid = f"{made:%Y%m%dT%H%M%S%f}-{suffix}"
    (keys_dir / f"{kid}.pem").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return kid, private


def signed_with(private: Ed25519PrivateKey, kid: str) -> str:
    now = int(time.time())
    claims = {"iss": "saaskit", "aud": "saaskit-api", "sub": "7", "iat": now, "exp": now + 60, "typ": "access",
              "role": "clerk", "profile_role": "clerk", "instance": None, "instance_id": None}
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": kid})


@pytest.fixture
def keys_dir(settings, tmp_path) -> Path:
    settings.JWT_KEYS_DIR = tmp_path / "ring"
    return settings.JWT_KEYS_DIR


def test_a_key_superseded_longer_than_the_grace_ago_no_longer_verifies_or_is_published(settings, keys_dir, client):
    now = datetime.now(UTC)
    old_kid, old_private = write_key(keys_dir, now - timedelta(days=30), "aaaaaa")
    new_kid, new_private = write_key(keys_dir, now - settings.JWT_KEY_RETIREMENT_GRACE - timedelta(seconds=5), "bbbbbb")
    keys.KEY_RING.reload()

    with pytest.raises(InvalidToken):
        access_token_verify(signed_with(old_private, old_kid))
    assert access_token_verify(signed_with(new_private, new_kid))["sub"] == "7"
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]] == [new_kid]
    assert keys.KEY_RING.signing_key().kid == new_kid


def test_a_key_superseded_within_the_grace_still_verifies(settings, keys_dir):
    now = datetime.now(UTC)
    old_kid, old_private = write_key(keys_dir, now - timedelta(days=30), "aaaaaa")
    new_kid, _ = write_key(keys_dir, now - settings.JWT_KEY_RETIREMENT_GRACE + timedelta(seconds=30), "bbbbbb")
    keys.KEY_RING.reload()

    assert access_token_verify(signed_with(old_private, old_kid))["sub"] == "7"
    assert [k.kid for k in keys.KEY_RING.all_keys()] == [new_kid, old_kid]


def test_jwt_keys_list_marks_signing_verifying_and_retired_keys(settings, keys_dir, capsys):
    now = datetime.now(UTC)
    retired, _ = write_key(keys_dir, now - timedelta(days=30), "aaaaaa")
    verifying, _ = write_key(keys_dir, now - timedelta(days=1), "bbbbbb")
    signing, _ = write_key(keys_dir, now - timedelta(seconds=10), "cccccc")
    keys.KEY_RING.reload()

    call_command("jwt_keys", "list")

    statuses = [(line.split()[0], line.split()[-1]) for line in capsys.readouterr().out.splitlines()]
    assert statuses == [(signing, "signing"), (verifying, "verifying"), (retired, "retired")]


def test_pruning_deletes_retired_keys_only(settings, keys_dir):
    now = datetime.now(UTC)
    retired, _ = write_key(keys_dir, now - timedelta(days=30), "aaaaaa")
    within, _ = write_key(keys_dir, now - timedelta(days=1), "bbbbbb")
    newest, _ = write_key(keys_dir, now - timedelta(seconds=10), "cccccc")
    keys.KEY_RING.reload()

    assert keys.prune() == [retired]
    assert sorted(p.stem for p in keys_dir.glob("*.pem")) == [within, newest]


def test_a_key_deleted_from_the_folder_stops_verifying_tokens_already_cached(keys_dir):
    first_kid = keys.KEY_RING.signing_key().kid  # generated on first use
    token = access_token_issue(user_id=7, instance=None, role="clerk", profile_role="clerk")
    assert access_token_verify(token)["sub"] == "7"  # now in the per-process cache of verified tokens
    keys.rotate()

    (keys_dir / f"{first_kid}.pem").unlink()
    keys.KEY_RING.reload()

    with pytest.raises(InvalidToken):
        access_token_verify(token)


def test_a_key_file_with_a_free_form_name_takes_its_age_from_the_file(settings, keys_dir):
    keys_dir.mkdir(parents=True)
    private = Ed25519PrivateKey.generate()
    path = keys_dir / "production-key.pem"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    made = datetime.now(UTC) - timedelta(hours=2)
    os.utime(path, (made.timestamp(), made.timestamp()))
    keys.KEY_RING.reload()
    newer = keys.rotate()

    assert [k.kid for k in keys.KEY_RING.all_keys()] == [newer, "production-key"]
    assert abs(keys.KEY_RING.all_keys()[1].created_at - made) < timedelta(seconds=1)
    assert access_token_verify(signed_with(private, "production-key"))["sub"] == "7"


def test_a_deleted_key_stops_verifying_in_this_process_within_a_second_without_a_reload(keys_dir, monkeypatch):
    """Another process (an operator's ``rm``) deletes the key: nobody calls reload() here. Once a second has
    passed on this process's clock, the token (verified and cached before) is refused."""
    from rest_framework.test import APIClient

    from tests.factories import ProfileFactory

    profile = ProfileFactory(role="clerk")
    leaked_kid = keys.KEY_RING.signing_key().kid
    token = access_token_issue(user_id=profile.user_id, instance=profile.instance, role="clerk",
                               profile_role="clerk")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/me").status_code == 200  # verified and cached
    new_kid = keys.generate_key(keys_dir)  # what ``jwt_keys rotate`` does, in another process

    (keys_dir / f"{leaked_kid}.pem").unlink()
    real_monotonic = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + 1.0)

    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"
    fresh = access_token_issue(user_id=profile.user_id, instance=profile.instance, role="clerk", profile_role="clerk")
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid


def test_the_key_folder_is_listed_only_once_its_poll_interval_passed(keys_dir, monkeypatch):
    token = access_token_issue(user_id=7, instance=None, role="clerk", profile_role="clerk")
    access_token_verify(token)
    listings = []
    real_list = keys.KeyRing._list
    monkeypatch.setattr(keys.KeyRing, "_list", staticmethod(lambda d: listings.append(d) or real_list(d)))
    frozen = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: frozen)

    for _ in range(1000):
        access_token_verify(token)
    within = len(listings)
    monkeypatch.setattr(time, "monotonic", lambda: frozen + keys._POLL_SECONDS)
    for _ in range(1000):
        access_token_verify(token)

    assert (within, len(listings)) == (0, 1)

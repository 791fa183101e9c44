import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accounts import keys
from accounts.services.tokens import InvalidToken, access_token_issue, access_token_verify
from tests.factories import InstanceFactory

pytestmark = pytest.mark.django_db


def issue(**overrides):
    instance = overrides.pop("instance", None)
    return access_token_issue(user_id=overrides.pop("user_id", 42), instance=instance,
                              role=overrides.pop("role", "clerk"), profile_role="clerk", **overrides)


def forge(claims: dict, *, header: dict, key, algorithm: str) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


def valid_claims(**changes):
    now = int(time.time())
    claims = {"iss": "saaskit", "aud": "saaskit-api", "sub": "42", "iat": now, "exp": now + 60, "typ": "access",
              "role": "super_admin", "profile_role": "super_admin", "instance": None, "instance_id": None}
    claims.update(changes)
    return claims


def test_an_issued_token_verifies_with_its_claims():
    instance = InstanceFactory(slug="acme")

    claims = access_token_verify(issue(instance=instance))

    assert (claims["sub"], claims["instance"], claims["instance_id"], claims["role"]) == (
        "42", "acme", instance.pk, "clerk")
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(issue())["alg"] == "EdDSA"


def test_an_expired_token_is_refused():
    with pytest.raises(InvalidToken) as raised:
        access_token_verify(issue(now=time.time() - 301))
    assert raised.value.code == "token_expired"


def test_alg_none_is_refused():
    kid = keys.KEY_RING.signing_key().kid
    unsigned = jwt.encode(valid_claims(), None, algorithm="none", headers={"kid": kid})

    with pytest.raises(InvalidToken):
        access_token_verify(unsigned)


def test_an_hmac_signature_made_with_the_public_key_is_refused():
    key = keys.KEY_RING.signing_key()
    public_pem = key.public_key.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(valid_claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac
    digest = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=")

    with pytest.raises(InvalidToken):
        access_token_verify(b".".join([header, payload, signature]).decode())


def test_a_token_signed_by_a_foreign_key_under_our_kid_is_refused():
    kid = keys.KEY_RING.signing_key().kid
    forged = forge(valid_claims(), header={"kid": kid}, key=Ed25519PrivateKey.generate(), algorithm="EdDSA")

    with pytest.raises(InvalidToken):
        access_token_verify(forged)


@pytest.mark.parametrize("changes", [{"aud": "someone-else"}, {"iss": "evil"}, {"typ": "refresh"}, {"sub": "x"}])
def test_wrong_audience_issuer_type_or_subject_is_refused(changes):
    key = keys.KEY_RING.signing_key()
    token = forge(valid_claims(**changes), header={"kid": key.kid}, key=key.private_key, algorithm="EdDSA")

    with pytest.raises(InvalidToken):
        access_token_verify(token)


def test_a_correctly_forged_token_with_our_key_verifies():
    """The control for the rejection tests above: the same forging path with every claim right passes."""
    key = keys.KEY_RING.signing_key()
    token = forge(valid_claims(), header={"kid": key.kid}, key=key.private_key, algorithm="EdDSA")

    assert access_token_verify(token)["sub"] == "42"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"])
def test_garbage_is_refused(garbage):
    with pytest.raises(InvalidToken):
        access_token_verify(garbage)


def test_rotation_signs_with_the_new_key_and_still_verifies_the_old(settings):
    old_token = issue()
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    new_kid = keys.rotate()
    new_token = issue()

    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid
    assert access_token_verify(old_token)["sub"] == "42"
    assert access_token_verify(new_token)["sub"] == "42"
    assert [k.kid for k in keys.KEY_RING.all_keys()] == [new_kid, old_kid]


def test_pruning_retires_superseded_keys_after_the_grace_period(settings):
    old_token = issue()
    new_kid = keys.rotate()
    from datetime import UTC, datetime, timedelta

    assert keys.prune(now=datetime.now(UTC)) == []  # within the grace period nothing goes
    removed = keys.prune(now=datetime.now(UTC) + settings.JWT_KEY_RETIREMENT_GRACE + timedelta(seconds=1))

    assert len(removed) == 1
    assert [k.kid for k in keys.KEY_RING.all_keys()] == [new_kid]
    with pytest.raises(InvalidToken):
        access_token_verify(old_token)


def test_jwks_lists_every_public_key_with_its_kid(client):
    first = keys.KEY_RING.signing_key().kid
    second = keys.rotate()

    body = client.get("/.well-known/jwks.json").json()

    assert [k["kid"] for k in body["keys"]] == [second, first]
    assert {k["kty"] for k in body["keys"]} == {"OKP"}
    assert all("d" not in k for k in body["keys"])  # never the private part


def test_a_token_verified_before_is_refused_once_it_expires(monkeypatch):
    token = issue()
    access_token_verify(token)  # now in the verified-token cache
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 301)

    with pytest.raises(InvalidToken) as raised:
        access_token_verify(token)
    assert raised.value.code == "token_expired"

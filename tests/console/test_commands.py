"""The management commands around the console: ``authz grant|revoke|check|explain``, ``tokens revoke`` and
``seed_demo --orders``; success and failure paths, --help, exit status and --json."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import RefreshToken, User
from accounts.services.tokens import token_pair_issue
from audit.models import AuditEntry
from authz.models import Policy
from authz.services import resource_create
from tests.factories import InstanceFactory, ProfileFactory
from tests.support.workers import worker_env


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it: its own process on this test database."""
    return subprocess.run([sys.executable, str(settings.BASE_DIR / "manage.py"), *args], env=worker_env(),
                          capture_output=True, text=True, timeout=120, check=False)


# --- --help and the exit status ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["authz", "--help"], ["authz", "grant", "--help"], ["authz", "revoke", "--help"],
                                     ["authz", "check", "--help"], ["authz", "explain", "--help"], ["tokens", "--help"],
                                     ["tokens", "revoke", "--help"], ["seed_demo", "--help"], ["doctor", "--help"]])
def test_every_command_has_help(command):
    done = manage(*command)

    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.django_db
@pytest.mark.parametrize(("command", "message"), [
    (["authz", "grant", "--instance", "nowhere", "1:get:resources:1"], "CommandError: no instance 'nowhere'"),
    (["tokens", "revoke", "--user", "nobody@example.com"], "CommandError: no user 'nobody@example.com'"),
    (["seed_demo", "--orders", "-1"], "CommandError: --orders must be between 0 and 100000, not -1"),
    (["authz", "check", "--instance", "nowhere", "1", "get", "resources", "1"], "CommandError: no instance 'nowhere'"),
    (["tokens", "revoke", "--family", "not-a-uuid"], "CommandError: --family 'not-a-uuid' is not a UUID"),
])
def test_a_failure_exits_1_with_one_line(command, message):
    done = manage(*command)

    assert done.returncode == 1
    assert done.stderr.strip() == message


def test_tokens_revoke_needs_exactly_one_target():
    done = manage("tokens", "revoke", "--user", "a@example.com", "--expired")

    assert done.returncode != 0
    assert "not allowed with argument" in done.stderr


# --- authz ------------------------------------------------------------------------------------------------------

@pytest.fixture
def acme():
    return InstanceFactory(slug="acme")


@pytest.fixture
def clerk(acme):
    return ProfileFactory(instance=acme, role="clerk", user__email="clerk@acme.test")


@pytest.mark.django_db
def test_authz_grant_then_check_explain_and_revoke(acme, clerk):
    folder = resource_create(instance=acme, name="reports")
    policy = f"{clerk.user_id}:get:resources:{folder.pk}"

    granted = json.loads(run("authz", "grant", "--instance", "acme", f"clerk@acme.test:get:resources:{folder.pk}",
                             "--json"))
    assert granted == {"instance": "acme", "granted": [policy]}
    assert Policy.objects.filter(instance=acme, user_id=clerk.user_id, resource_id=str(folder.pk)).count() == 1
    entry = AuditEntry.objects.get(action="policy_grant")
    assert (entry.actor_id, entry.origin, entry.after) == (None, "command", {"policies": [policy]})

    assert run("authz", "check", "--instance", "acme", "clerk@acme.test", "get", "resources", str(folder.pk)) == \
        "allowed"
    explained = json.loads(run("authz", "explain", "--instance", "acme", str(clerk.user_id), "get", "resources",
                               str(folder.pk), "--json"))
    assert (explained["allowed"], explained["reason"], explained["policy"]) == (True, "policy", policy)

    assert run("authz", "revoke", "--instance", "acme", policy) == "revoked 1 policies in acme"
    assert not Policy.objects.filter(instance=acme).exists()
    assert run("authz", "check", "--instance", "acme", str(clerk.user_id), "get", "resources", str(folder.pk)) == \
        "denied"
    assert AuditEntry.objects.get(action="policy_revoke").before == {"policies": [policy]}


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["grant", "--instance", "acme", "not-a-policy"], "invalid_policy:"),
    (["grant", "--instance", "acme", "nobody@acme.test:get:resources:1"], "no user 'nobody@acme.test'"),
    (["check", "--instance", "acme", "clerk@acme.test", "get", "spaceships", "1"], "unknown resource type"),
    (["explain", "--instance", "acme", "clerk@acme.test", "fly", "resources", "1"], "resources has no action 'fly'"),
])
def test_authz_refusals_change_nothing(acme, clerk, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        run("authz", *args)

    assert "\n" not in str(raised.value)
    assert not Policy.objects.exists() and not AuditEntry.objects.exists()


# --- tokens -----------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_tokens_revoke_user(clerk):
    token_pair_issue(user=clerk.user, instance=clerk.instance, role="clerk", profile_role="clerk")

    out = json.loads(run("tokens", "revoke", "--user", "Clerk@Acme.test", "--json"))

    assert out == {"user": "clerk@acme.test", "revoked": 1}
    assert list(RefreshToken.objects.values_list("revoked_reason", flat=True)) == ["command"]
    assert User.objects.get(pk=clerk.user_id).tokens_not_before is not None
    entry = AuditEntry.objects.get(action="token_revocation")
    assert (entry.actor_id, entry.origin, entry.target_id) == (None, "command", str(clerk.user_id))


@pytest.mark.django_db
def test_tokens_revoke_family(clerk):
    first = token_pair_issue(user=clerk.user, instance=clerk.instance, role="clerk", profile_role="clerk")
    other = token_pair_issue(user=clerk.user, instance=clerk.instance, role="clerk", profile_role="clerk")

    assert run("tokens", "revoke", "--family", str(first.refresh_token.family)) == \
        f"revoked 1 refresh tokens of family {first.refresh_token.family}"

    assert RefreshToken.objects.get(pk=first.refresh_token.pk).revoked_reason == "command"
    assert RefreshToken.objects.get(pk=other.refresh_token.pk).revoked_at is None


@pytest.mark.django_db
@pytest.mark.parametrize(("family", "message"), [("not-a-uuid", "is not a UUID"), (str(uuid.UUID(int=7)),
                                                                                  "no refresh token family")])
def test_tokens_revoke_unknown_family_fails(clerk, family, message):
    token_pair_issue(user=clerk.user, instance=clerk.instance, role="clerk", profile_role="clerk")

    with pytest.raises(CommandError, match=message):
        run("tokens", "revoke", "--family", family)

    assert RefreshToken.objects.get().revoked_at is None


@pytest.mark.django_db
def test_tokens_revoke_expired_deletes_only_expired_tokens(clerk):
    from datetime import timedelta

    from django.utils import timezone

    live = token_pair_issue(user=clerk.user, instance=clerk.instance, role="clerk", profile_role="clerk")
    gone = token_pair_issue(user=clerk.user, instance=clerk.instance, role="clerk", profile_role="clerk")
    RefreshToken.objects.filter(pk=gone.refresh_token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert json.loads(run("tokens", "revoke", "--expired", "--json")) == {"expired_deleted": 1}

    assert list(RefreshToken.objects.values_list("pk", flat=True)) == [live.refresh_token.pk]


@pytest.mark.django_db
def test_seed_demo_orders_without_a_worker_fails_naming_the_pending_orders():
    with pytest.raises(CommandError, match=r"^3 of 3 orders still pending after 0.5 s: is a worker running"):
        run("seed_demo", "--orders", "3", "--wait", "0.5")

    from orders.models import Order

    assert Order.objects.filter(status="pending").count() == 3


@pytest.mark.django_db
def test_seed_demo_orders_without_waiting_places_them():
    from orders.models import Order

    assert run("seed_demo", "--orders", "2", "--wait", "0").endswith("placed 2 orders")
    assert sorted(Order.objects.values_list("instance__slug", "customer__email")) == [
        ("acme", "customer@acme.local"), ("globex", "customer@globex.local")]

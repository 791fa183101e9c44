"""``manage.py authz grant|revoke|check|explain``: the ACL from the command line, through authz's services (writes,
audited with origin ``command``) and selectors (reads).

A policy is ``SUBJECT:ACTION:RESOURCE_TYPE:RESOURCE_ID`` as in the API, where SUBJECT may also be a member's
email (turned into their user id here). Exit status 1 with one line on stderr on any error.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.emails import normalize_email
from accounts.models import Instance, User
from authz import selectors, services
from authz.registry import get_type
from saaskit.errors import ApplicationError


def _instance(slug: str) -> Instance:
    instance = Instance.objects.filter(slug=slug).first()
    if instance is None:
        raise CommandError(f"no instance {slug!r}")
    return instance


def _user_id(subject: str) -> int:
    """A user id, given as one or as an email."""
    if subject.isdigit():
        return int(subject)
    user_id = User.objects.filter(email=normalize_email(subject)).values_list("pk", flat=True).first()
    if user_id is None:
        raise CommandError(f"no user {subject!r}")
    return user_id


def _policy(text: str) -> str:
    subject, sep, rest = text.partition(":")
    if sep and "@" in subject:
        return f"{_user_id(subject)}:{rest}"
    return text


def _error_line(exc: ApplicationError) -> str:
    fields = "; ".join(f"{name}: {', '.join(map(str, msgs)) if isinstance(msgs, list | tuple) else msgs}"
                       for name, msgs in (exc.fields or {}).items())
    line = f"{exc.code}: {exc.message}" + (f" ({fields})" if fields else "")
    return " ".join(line.split())  # one line


class Command(BaseCommand):
    help = ("Grant, revoke, check or explain policies of an instance (authz services and selectors). "
            "Run `manage.py authz <action> --help` for each action.")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{grant,revoke,check,explain}")
        for name, what in (("grant", "Grant policies (kept if held already)."),
                           ("revoke", "Revoke policies (a missing one is no error).")):
            sub = actions.add_parser(name, help=what, description=what)
            sub.add_argument("--instance", required=True, help="instance slug")
            sub.add_argument("policies", nargs="+", metavar="POLICY",
                             help="SUBJECT:ACTION:RESOURCE_TYPE:RESOURCE_ID; SUBJECT is a user id, an email "
                                  "or group/<id>")
            sub.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
        for name, what in (("check", "Whether SUBJECT may do ACTION on the object (exit 0 either way)."),
                           ("explain", "Why SUBJECT may or may not do ACTION on the object.")):
            sub = actions.add_parser(name, help=what, description=what)
            sub.add_argument("--instance", required=True, help="instance slug")
            sub.add_argument("subject", help="user id or email")
            sub.add_argument("verb", metavar="ACTION", help="e.g. get")
            sub.add_argument("resource_type", metavar="RESOURCE_TYPE", help="e.g. resources")
            sub.add_argument("resource_id", metavar="RESOURCE_ID", help="an id, or *")
            sub.add_argument("--json", action="store_true", dest="as_json", help="print JSON")

    def handle(self, *args: Any, action: str, instance: str, as_json: bool, **options: Any) -> None:
        target = _instance(instance)
        try:
            if action in ("grant", "revoke"):
                result = self._write(action, target, [_policy(p) for p in options["policies"]])
            else:
                result = self._read(action, target, options)
        except ApplicationError as exc:
            raise CommandError(_error_line(exc)) from None
        line = result.pop("line")
        self.stdout.write(json.dumps(result, sort_keys=True) if as_json else line)

    def _write(self, action: str, instance: Instance, policies: list[str]) -> dict[str, Any]:
        if action == "grant":
            specs = services.policies_upsert(instance=instance, policies=policies, actor=None)
            granted = [s.as_string() for s in specs]
            return {"instance": instance.slug, "granted": granted,
                    "line": f"granted {len(granted)} policies in {instance.slug}: {', '.join(granted)}"}
        removed = services.policies_remove(instance=instance, policies=policies, actor=None)
        return {"instance": instance.slug, "revoked": removed,
                "line": f"revoked {removed} policies in {instance.slug}"}

    def _read(self, action: str, instance: Instance, options: dict[str, Any]) -> dict[str, Any]:
        user_id = _user_id(options["subject"])
        verb, rtype, rid = options["verb"], options["resource_type"], options["resource_id"]
        registered = get_type(rtype)
        if registered is None:
            raise CommandError(f"unknown resource type {rtype!r}")
        if verb not in registered.actions:
            raise CommandError(f"{rtype} has no action {verb!r} (one of {', '.join(sorted(registered.actions))})")
        asked = {"instance": instance.slug, "subject": user_id, "action": verb, "resource_type": rtype,
                 "resource_id": rid}
        if action == "check":
            allowed = selectors.check(instance_id=instance.pk, user_id=user_id, action=verb, resource_type=rtype,
                                      resource_id=rid)
            return {**asked, "allowed": allowed, "line": "allowed" if allowed else "denied"}
        why = selectors.explain(instance_id=instance.pk, user_id=user_id, action=verb, resource_type=rtype,
                                resource_id=rid)
        detail = ", ".join(f"{k}={v}" for k, v in why.as_dict().items() if k not in ("allowed", "reason")
                           and v is not None)
        line = f"{'allowed' if why.allowed else 'denied'}: {why.reason}" + (f" ({detail})" if detail else "")
        return {**asked, **why.as_dict(), "line": line}

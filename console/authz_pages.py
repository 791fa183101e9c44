"""The console's authz pages (mounted by ``authz.admin.PolicyAdmin.get_urls``): grant or revoke policies in bulk
through ``authz.services``, and "explain": why a subject may or may not act, from ``authz.selectors.explain``.

A superuser works in any instance; a staff instance admin only in the instances they administer (another
instance is answered like a missing one).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from accounts.models import Instance, Profile, User
from authz.models import Group
from authz.registry import RESOURCE_TYPES, all_actions
from authz.selectors import Explanation, check, explain
from authz.services import policies_remove, policies_upsert
from console.scoping import ALL, admin_instance_ids, is_console_user
from saaskit.errors import ApplicationError

MAX_LINES = 1000


class _InstanceForm(forms.Form):
    instance = forms.CharField(max_length=63, help_text="the instance's slug")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_instance(self) -> Instance:
        slug = self.cleaned_data["instance"].strip()
        allowed = admin_instance_ids(self.user)
        instance = Instance.objects.filter(slug=slug).first()
        if instance is None or (allowed is not ALL and instance.pk not in (allowed or ())):
            raise forms.ValidationError(f"No instance {slug!r} that you administer.")
        return instance


class BulkPolicyForm(_InstanceForm):
    operation = forms.ChoiceField(choices=[("grant", "grant"), ("revoke", "revoke")], widget=forms.RadioSelect)
    policies = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "cols": 70}),
        help_text="one policy a line: subject:action:resource_type:resource_id, the subject a user id or "
                  "group/<id>, e.g. 12:get:orders:345 or group/3:update:resources:*")

    def clean_policies(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["policies"].splitlines() if line.strip()]
        if not lines:
            raise forms.ValidationError("Give at least one policy.")
        if len(lines) > MAX_LINES:
            raise forms.ValidationError(f"At most {MAX_LINES} policies at once.")
        return lines


class ExplainForm(_InstanceForm):
    subject = forms.CharField(max_length=254, help_text="the user's email or id")
    action = forms.ChoiceField(choices=[])
    resource_type = forms.ChoiceField(choices=[])
    resource_id = forms.CharField(max_length=64, help_text="an object id, or * for every object")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [(a, a) for a in sorted(all_actions())]
        self.fields["resource_type"].choices = [(t, t) for t in sorted(RESOURCE_TYPES)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        instance, subject = data.get("instance"), (data.get("subject") or "").strip()
        if instance is None or not subject:
            return data
        users = User.objects.filter(pk=int(subject)) if subject.isdigit() else User.objects.filter(
            email__iexact=subject)
        user = users.filter(profiles__instance=instance).first()
        if user is None and admin_instance_ids(self.user) is ALL:  # a superuser may ask about a non-member
            user = users.first()
        if user is None:  # an instance admin learns nothing of users outside their instance
            self.add_error("subject", f"No user {subject!r}.")
        data["user"] = user
        return data


def describe(explanation: Explanation, *, member: bool, data: dict[str, Any]) -> str:
    """The explanation in one sentence an operator reads."""
    what = f"{data['action']} on {data['resource_type']} {data['resource_id']}"
    reason = explanation.reason
    if reason == "role":
        return f"Allowed: the role {explanation.role} allows {what}."
    if reason == "policy":
        return f"Allowed by the policy {explanation.policy}."
    if reason == "wildcard":
        return f"Allowed by the wildcard policy {explanation.policy} (every object of the type)."
    if reason == "group":
        name = Group.objects.filter(pk=explanation.group_id).values_list("name", flat=True).first()
        return f"Allowed through the group {name or explanation.group_id}: policy {explanation.policy}."
    if reason == "folder":
        return f"Allowed by a grant on the enclosing folder {explanation.folder_id}: policy {explanation.policy}."
    if not member:
        return f"Denied: the user is not a member of the instance, so nothing allows {what}."
    if data["action"] not in RESOURCE_TYPES[data["resource_type"]].actions:
        return f"Denied: {data['resource_type']} has no action {data['action']!r}."
    return f"Denied: neither the user's role nor any policy (direct, wildcard, group or folder) allows {what}."


def _guard(request: HttpRequest) -> None:
    if not is_console_user(request.user):
        raise PermissionDenied


def bulk_policies_view(request: HttpRequest, *, admin_site: Any, opts: Any) -> HttpResponse:
    """Grant or revoke many policies in one instance, all or none (``policies_upsert`` / ``policies_remove``)."""
    _guard(request)
    form = BulkPolicyForm(request.POST if request.method == "POST" else None, user=request.user,
                          initial={"operation": "grant"})
    if request.method == "POST" and form.is_valid():
        instance, lines = form.cleaned_data["instance"], form.cleaned_data["policies"]
        try:
            if form.cleaned_data["operation"] == "grant":
                specs = policies_upsert(instance=instance, policies=lines, actor=request.user)
                done = f"Granted {len(specs)} policy(ies) in {instance.slug}."
            else:
                removed = policies_remove(instance=instance, policies=lines, actor=request.user)
                done = f"Revoked {removed} policy(ies) in {instance.slug}."
        except ApplicationError as exc:
            form.add_error("policies", str(exc))
        else:
            messages.success(request, done)
            return HttpResponseRedirect(request.path)
    context = {**admin_site.each_context(request), "title": "Grant or revoke policies", "form": form, "opts": opts}
    return TemplateResponse(request, "admin/authz/policy/bulk.html", context)


def explain_view(request: HttpRequest, *, admin_site: Any, opts: Any) -> HttpResponse:
    """Why a subject may or may not act: the first of role, direct policy, wildcard, group, folder grant."""
    _guard(request)
    form = ExplainForm(request.GET if "instance" in request.GET else None, user=request.user)
    result: dict[str, Any] | None = None
    if form.is_valid():
        data, instance, user = form.cleaned_data, form.cleaned_data["instance"], form.cleaned_data["user"]
        explanation = explain(instance_id=instance.pk, user_id=user.pk, action=data["action"],
                              resource_type=data["resource_type"], resource_id=data["resource_id"])
        member = Profile.objects.filter(instance=instance, user=user).exists()
        result = {
            "explanation": explanation, "user": user, "instance": instance,
            "sentence": describe(explanation, member=member, data=data),
            "check": check(instance_id=instance.pk, user_id=user.pk, action=data["action"],
                           resource_type=data["resource_type"], resource_id=data["resource_id"]),
        }
    context = {**admin_site.each_context(request), "title": "Explain a decision", "form": form, "result": result,
               "opts": opts}
    return TemplateResponse(request, "admin/authz/policy/explain.html", context)

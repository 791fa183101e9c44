"""Admin console for accounts: instances with their members, users with their profiles and refresh tokens,
member invitations (read-only), and refresh tokens on their own (filters by user, instance and state;
revoke and revoke-family actions).

Roles are chosen from the role lattice (``authz.roles.LATTICE``), never typed. Token hashes are never shown.
Writes with side effects go through the services: deleting a user is ``user_delete`` (publishes
``account_deleted``), revoking is ``refresh_token_revoke*`` / ``user_revoke_all_tokens``, and a profile whose
role changed or that was removed has its refresh tokens for that instance revoked, as the members API does.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from accounts.emails import normalize_email
from accounts.models import Instance, Invitation, InvitationState, Profile, RefreshToken, RefreshTokenState, User
from accounts.services.instances import member_added, member_left, member_role_changed, member_tokens_revoke
from accounts.services.tokens import (
    refresh_token_revoke,
    refresh_token_revoke_family,
    user_revoke_all_tokens,
)
from accounts.services.users import user_delete, user_lock, user_unlock
from accounts.signals import account_created
from authz import roles as authz_roles

ADMIN_REVOKE_REASON = "admin"


# --- profiles (members) -------------------------------------------------------------------------

class ProfileForm(forms.ModelForm):
    """A profile whose role is a choice from the lattice: instance-bound roles need an instance, the
    others (super_admin) need none."""

    role = forms.ChoiceField(choices=())

    class Meta:
        model = Profile
        fields = ["user", "instance", "role"]

    instance_bound_only = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lattice = authz_roles.LATTICE
        names = lattice.instance_roles() if self.instance_bound_only else [
            name for name in lattice.roles if name != lattice.bottom]
        self.fields["role"].choices = [(name, name) for name in names]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        role = authz_roles.LATTICE.roles.get(cleaned.get("role") or "")
        if role is None:
            return cleaned
        instance = cleaned.get("instance")  # on an instance's page, the parent (the inline's foreign key)
        if role.instance_bound and not instance:
            self.add_error("role", f"{role.name} is bound to an instance; choose one.")
        if not role.instance_bound and instance:
            self.add_error("role", f"{role.name} is not bound to an instance; leave the instance empty.")
        self._check_not_taken(cleaned)
        return cleaned

    def _check_not_taken(self, cleaned: dict[str, Any]) -> None:
        """One profile per user and instance, one global profile per user, against the rows already
        stored (an inline's own validation skips constraints on its foreign key)."""
        user, instance = cleaned.get("user"), cleaned.get("instance")
        if user is None or user.pk is None or (instance is not None and instance.pk is None):
            return
        taken = Profile.objects.filter(user=user, instance=instance)
        if self.instance.pk is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            self.add_error(None, f"{user} already has a profile in {instance.slug}." if instance is not None
                           else f"{user} already has a global profile.")
        external_id = cleaned.get("external_id")
        if external_id and instance is not None and Profile.objects.filter(
                instance=instance, external_id=external_id).exclude(pk=self.instance.pk).exists():
            self.add_error("external_id", f"Another member of {instance.slug} has this external id.")


class ProfileInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        """Two rows of one submission may not give a user two profiles in one instance (or two global ones)."""
        super().clean()
        seen: set[tuple[Any, Any]] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or form.errors or (self.can_delete and self._should_delete_form(form)):
                continue
            user, instance = data.get("user"), data.get("instance")
            key = (getattr(user, "pk", None) or id(user), getattr(instance, "pk", None) or id(instance))
            if key in seen:
                raise forms.ValidationError("A user holds one profile per instance and at most one global profile.")
            seen.add(key)
            external = (key[1], data.get("external_id")) if data.get("external_id") else None
            if external is not None and external in seen:
                raise forms.ValidationError("Two members of one instance cannot share an external id.")
            if external is not None:
                seen.add(external)


class MemberForm(ProfileForm):
    instance_bound_only = True


class _ProfileInlineMixin:
    @staticmethod
    def revoke_changed(formset: forms.BaseModelFormSet, actor: User | None = None) -> None:
        """Revoke refresh tokens of profiles whose role changed or that were removed (before saving); a
        profile removed from (or moved out of) an instance also loses its policies and groups there. Role
        changes and removals in an instance are audited with ``actor`` (the services do it)."""
        deleted_forms = set(map(id, formset.deleted_forms))
        for form in formset.forms:
            profile = form.instance
            if profile.pk is None or not form.has_changed():
                continue
            deleted = id(form) in deleted_forms
            if deleted or "role" in form.changed_data or "instance" in form.changed_data:
                old = Profile.objects.filter(pk=profile.pk).select_related("instance").first()
                if old is None:
                    continue
                left = deleted or "instance" in form.changed_data
                if left and old.instance is not None:
                    member_left(user_id=old.user_id, instance=old.instance, reason="member_removed_by_admin",
                                actor=actor, profile=old)
                elif old.instance is not None:
                    member_role_changed(profile=profile, instance=old.instance, before=old.role, actor=actor,
                                        reason="role_changed_by_admin")
                else:
                    member_tokens_revoke(user_id=old.user_id, instance_id=old.instance_id,
                                         reason="member_removed_by_admin" if deleted else "role_changed_by_admin")

    @staticmethod
    def audit_added(formset: forms.BaseModelFormSet, actor: User | None) -> None:
        """After saving: each profile added in an instance is audited as a new member."""
        for profile in getattr(formset, "new_objects", []):
            if profile.instance_id is not None:
                member_added(actor=actor, profile=profile, via="admin")


class MemberInline(admin.TabularInline):
    model = Profile
    form = MemberForm
    formset = ProfileInlineFormSet
    fk_name = "instance"
    fields = ["user", "role", "external_id", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "members"


@admin.register(Instance)
class InstanceAdmin(_ProfileInlineMixin, admin.ModelAdmin):
    """Instances with their member counts and active flag; members inline, each role a choice from the lattice
    (an instance admin's choices stop at their own role: ``console.admin_base``). Unticking "active" blocks the
    instance's logins and refreshes at once (``accounts.services.users`` and ``.tokens`` check the flag on each)."""

    list_display = ["slug", "name", "is_active", "members", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["slug", "name"]
    ordering = ["slug"]
    inlines = [MemberInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Instance]:
        # A correlated subquery PostgreSQL runs for the rows of the page only (a GROUP BY over a join would
        # aggregate every profile of every instance first).
        members = (Profile.objects.filter(instance=OuterRef("pk")).order_by().values("instance")
                   .annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(member_count=Coalesce(Subquery(members), 0))

    @admin.display(description="members", ordering="member_count")
    def members(self, instance: Instance) -> int:
        return instance.member_count  # type: ignore[attr-defined]

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        self.revoke_changed(formset, actor=request.user)
        super().save_formset(request, form, formset, change)
        self.audit_added(formset, actor=request.user)


# --- invitations -----------------------------------------------------------------------------------

class InvitationStateFilter(admin.SimpleListFilter):
    """pending / expired (pending past its expiry) / accepted / declined."""

    title = "state"
    parameter_name = "state"
    EXPIRED = "expired"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*InvitationState.choices, (self.EXPIRED, "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> QuerySet[Invitation]:
        value = self.value()
        if value == InvitationState.PENDING:
            return queryset.open()
        if value == self.EXPIRED:
            return queryset.filter(state=InvitationState.PENDING).exclude(pk__in=queryset.open().values("pk"))
        if value in InvitationState.values:
            return queryset.filter(state=value)
        return queryset


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only list of member invitations (made through the members API); deleting one withdraws it."""

    list_display = ["email", "instance", "role", "shown_state", "invited_by", "created_at", "expires_at",
                    "responded_at", "responded_by"]
    list_filter = [InvitationStateFilter]  # an instance is found by search: no filter listing every instance
    list_select_related = ["instance", "invited_by", "responded_by"]
    search_fields = ["email", "instance__slug"]
    ordering = ["-created_at"]
    fields = ["id", "instance", "email", "role", "shown_state", "invited_by", "created_at", "expires_at",
              "responded_at", "responded_by"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="state")
    def shown_state(self, invitation: Invitation) -> str:
        return invitation.current_state


# --- users ----------------------------------------------------------------------------------------

class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email


class ProfileInline(admin.TabularInline):
    model = Profile
    form = ProfileForm
    formset = ProfileInlineFormSet
    fk_name = "user"
    fields = ["instance", "role", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0
    verbose_name = "profile"


class RefreshTokenInline(admin.TabularInline):
    """Read-only: which refresh tokens exist and in which state (never their hashes)."""

    model = RefreshToken
    fk_name = "user"
    fields = ["id", "instance", "role", "state", "created_at", "expires_at", "used_at", "revoked_at",
              "revoked_reason"]
    readonly_fields = fields
    ordering = ["-created_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="state")
    def state(self, token: RefreshToken) -> str:
        return token.state


@admin.register(User)
class UserAdmin(_ProfileInlineMixin, BaseUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Tokens", {"fields": ("tokens_not_before", "locked_at")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "usable_password", "password1", "password2")}),
    )
    readonly_fields = ["tokens_not_before", "locked_at", "last_login", "date_joined"]
    list_display = ["email", "name", "is_active", "is_staff", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "name"]
    ordering = ["email"]
    inlines = [ProfileInline, RefreshTokenInline]
    actions = ["revoke_all_tokens", "lock", "unlock"]

    # Fields that grant power; only a superuser sees or changes them (a staff user who may change users would
    # otherwise make themselves superuser, or give themselves any permission directly or through a group).
    SUPERUSER_ONLY_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        hidden = self.SUPERUSER_ONLY_FIELDS
        return [(name, {**options, "fields": tuple(f for f in options["fields"] if f not in hidden)})
                for name, options in fieldsets]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        return filters if request.user.is_superuser else [f for f in filters if f != "is_superuser"]

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Changing a superuser (their email or password) would be taking over the account.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> User | None:
        user = super().get_object(request, object_id, from_field)
        if user is not None:  # the password form saves this row: the password_change entry's actor (User.save)
            user._password_changed_by = request.user
        return user

    def get_inline_instances(self, request: HttpRequest, obj: User | None = None) -> list[Any]:
        # The add page is email and password only; profiles and tokens come once the user exists.
        return super().get_inline_instances(request, obj) if obj is not None else []

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # the admin view runs in one transaction: the event commits with the user
            account_created.send(sender=User, instance=None, payload={"user_id": obj.pk, "email": obj.email})

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if formset.model is Profile:
            self.revoke_changed(formset, actor=request.user)
        super().save_formset(request, form, formset, change)
        if formset.model is Profile:
            self.audit_added(formset, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if not request.user.is_superuser and queryset.filter(is_superuser=True).exists():
            raise PermissionDenied("Only a superuser may delete a superuser.")
        with transaction.atomic():
            for user in queryset.order_by("pk"):
                user_delete(user=user)

    @admin.action(description="Revoke all tokens of the selected users", permissions=["change"])
    def revoke_all_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        revoked = 0
        users = list(queryset.order_by("pk"))
        for user in users:
            revoked += user_revoke_all_tokens(user=user, reason=ADMIN_REVOKE_REASON, actor=request.user)
        self.message_user(request, f"Revoked {revoked} refresh tokens of {len(users)} users; "
                                   "their access tokens stop working within a second.", messages.SUCCESS)

    def _lockable(self, request: HttpRequest, queryset: QuerySet[User]) -> list[User] | None:
        users = list(queryset.order_by("pk"))
        if any(user.pk == request.user.pk for user in users):
            self.message_user(request, "You cannot lock or unlock your own account; nothing was changed.",
                              messages.ERROR)
            return None
        if not request.user.is_superuser and any(user.is_superuser for user in users):
            raise PermissionDenied("Only a superuser may lock or unlock a superuser.")
        # A lock reaches every instance: an instance admin may lock only users who belong to their instances
        # alone (console.admin_base decides, object by object); one user they may not change refuses them all.
        if not all(self.has_change_permission(request, user) for user in users):
            raise PermissionDenied("You may lock or unlock only users who belong to your instances alone.")
        return users

    @admin.action(description="Lock the selected users (no login, no refresh, access tokens stop)",
                  permissions=["change"])
    def lock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._lockable(request, queryset)
        if users is None:
            return
        locked = sum(user_lock(user=user, actor=request.user) for user in users)
        self.message_user(request, f"Locked {locked} of {len(users)} users (the others were locked already); "
                                   "their access tokens stop working within a second.", messages.SUCCESS)

    @admin.action(description="Unlock the selected users", permissions=["change"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._lockable(request, queryset)
        if users is None:
            return
        unlocked = sum(user_unlock(user=user, actor=request.user) for user in users)
        self.message_user(request, f"Unlocked {unlocked} of {len(users)} users (the others were not locked).",
                          messages.SUCCESS)


# --- refresh tokens ----------------------------------------------------------------------------------

class RefreshTokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"
    LABELS = {RefreshTokenState.ACTIVE: "live", RefreshTokenState.USED: "rotated"}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(value, self.LABELS.get(value, label)) for value, label in RefreshTokenState.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RefreshToken]) -> QuerySet[RefreshToken]:
        value = self.value()
        if value in RefreshTokenState.values:
            return queryset.in_state(value)
        return queryset


@admin.register(RefreshToken)
class RefreshTokenAdmin(admin.ModelAdmin):
    """Read-only list of refresh tokens. Only a SHA-256 of each token is stored, and it is not shown."""

    list_display = ["id", "user", "instance", "role", "profile_role", "state", "created_at", "expires_at",
                    "used_at", "revoked_at", "revoked_reason"]
    # Users and instances are found by search (or ?user=<id>, ?instance=<id>): no filter listing every one.
    list_filter = [RefreshTokenStateFilter]
    list_select_related = ["user", "instance"]
    search_fields = ["user__email", "=instance__slug", "family"]
    ordering = ["-created_at"]
    fields = ["id", "user", "instance", "role", "profile_role", "family", "parent", "state", "created_at",
              "expires_at", "used_at", "revoked_at", "revoked_reason"]
    readonly_fields = fields
    actions = ["revoke", "revoke_family"]
    read_only_record = True  # console.admin_base: no Save buttons; changes go through actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="state")
    def state(self, token: RefreshToken) -> str:
        return token.state

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[RefreshToken],
                           search_term: str) -> tuple[QuerySet[RefreshToken], bool]:
        """A user's email, an instance's slug or a family id, each exact, through indexed lookups: an OR of
        ``icontains`` across two joins scans every token (seconds at a million)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(user_id__in=User.objects.filter(email=normalize_email(term)).values("pk")), False
        try:
            family = uuid.UUID(term)
        except ValueError:
            return queryset.filter(instance_id__in=Instance.objects.filter(slug=term).values("pk")), False
        return queryset.filter(family=family), False

    @admin.action(description="Revoke the selected refresh tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[RefreshToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True).order_by("pk"))
        for token in tokens:
            refresh_token_revoke(token=token, reason=ADMIN_REVOKE_REASON, actor=request.user)
        self.message_user(request, f"Revoked {len(tokens)} refresh tokens.", messages.SUCCESS)

    @admin.action(description="Revoke the whole family of the selected refresh tokens", permissions=["change"])
    def revoke_family(self, request: HttpRequest, queryset: QuerySet[RefreshToken]) -> None:
        families = sorted(set(queryset.values_list("family", flat=True)))
        revoked = sum(refresh_token_revoke_family(family=family, reason=ADMIN_REVOKE_REASON,
                                                         actor=request.user) for family in families)
        self.message_user(request, f"Revoked {revoked} refresh tokens in {len(families)} families.",
                          messages.SUCCESS)

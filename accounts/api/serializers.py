"""Output serializers of the instances, members, me and roles endpoints (auth serializers live in
``accounts.api.auth``). Input serializers are nested in the API classes that use them."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import Instance, Invitation, Profile


class InvitationOutput(serializers.ModelSerializer):
    instance = serializers.CharField(source="instance.slug")
    instance_name = serializers.CharField(source="instance.name")
    state = serializers.ChoiceField(source="current_state", choices=["pending", "expired", "accepted", "declined"])

    class Meta:
        model = Invitation
        fields = ["id", "instance", "instance_name", "email", "role", "state", "created_at", "expires_at"]


class MemberInstanceOutput(serializers.Serializer):
    """One instance the user is a member of, as the login response lists them."""

    slug = serializers.CharField(source="instance.slug")
    name = serializers.CharField(source="instance.name")
    role = serializers.CharField()


class ProfileOutput(serializers.Serializer):
    instance = serializers.CharField(source="instance.slug", read_only=True, allow_null=True, default=None)
    role = serializers.CharField()


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    profiles = ProfileOutput(many=True)
    invitations = InvitationOutput(many=True, help_text="Pending invitations addressed to the caller's email.")


class RoleOutput(serializers.Serializer):
    name = serializers.CharField()
    instance_bound = serializers.BooleanField()
    implies = serializers.ListField(child=serializers.CharField())
    switches_to = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()


class InstanceOutput(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = ["slug", "name", "is_active"]


class MemberOutput(serializers.ModelSerializer):
    user_id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")

    class Meta:
        model = Profile
        fields = ["user_id", "email", "role"]

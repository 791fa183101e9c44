"""Output serializers of the instances, members, me and roles endpoints (auth serializers live in
``accounts.api.auth``). Input serializers are nested in the API classes that use them."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import Instance, Profile


class ProfileOutput(serializers.Serializer):
    instance = serializers.CharField(source="instance.slug", read_only=True, allow_null=True, default=None)
    role = serializers.CharField()


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()
    profiles = ProfileOutput(many=True)


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

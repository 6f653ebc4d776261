"""Representations of accounts shared by the APIs of every app."""

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.models import User
from accounts.selectors import user_photo_path

# The shape of every refusal lives with the other shared API pieces; the old
# import path keeps working.
from common.api import ErrorSerializer as ErrorSerializer


def user_photo_url(*, user: User, context: dict[str, Any]) -> str | None:
    """The photo's address (accounts.selectors.user_photo_path), absolute
    when the serializer has the request in its context."""
    path = user_photo_path(user=user)
    request = context.get("request")
    if path is None or request is None:
        return path
    return request.build_absolute_uri(path)


@extend_schema_serializer(component_name="UserCore")
class UserSerializer(serializers.ModelSerializer):
    """A person's own account, as they see it. The badge and flags are
    maintained by the server and read-only."""

    phone = serializers.CharField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    photo_url = serializers.SerializerMethodField(help_text="Served only to people who may see the profile.")

    class Meta:
        model = User
        fields = [
            "id",
            "phone",
            "first_name",
            "last_name",
            "middle_name",
            "display_name",
            "photo_url",
            "language",
            "time_zone",
            "is_verified_educator",
            "is_name_flagged",
            "is_safe_mode",
        ]
        read_only_fields = fields

    def get_photo_url(self, user: User) -> str | None:
        return user_photo_url(user=user, context=self.context)


@extend_schema_serializer(component_name="Me")
class MeSerializer(UserSerializer):
    """The current user with their memberships and guardianships; pass the
    summary of organisations.selectors.user_memberships_summary as
    context["memberships_summary"]."""

    memberships = serializers.SerializerMethodField()
    guardianships = serializers.SerializerMethodField()

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "memberships", "guardianships"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_memberships(self, user: User) -> list[Any]:
        return list(self.context.get("memberships_summary", {}).get("memberships", []))

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_guardianships(self, user: User) -> list[Any]:
        return list(self.context.get("memberships_summary", {}).get("guardianships", []))

from django.contrib.auth import get_user_model
from rest_framework import serializers

from console import roles
from console.models import Asset, AuditEvent, Customer


class AssetSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", queryset=Customer.objects.all())

    class Meta:
        model = Asset
        fields = ["id", "customer", "kind", "value", "description"]

    def validate(self, attrs):
        asset = Asset(**attrs)
        asset.clean()  # one validation for the admin, the pages and the API
        attrs["value"] = asset.value
        return attrs


class CustomerSerializer(serializers.ModelSerializer):
    assets = AssetSerializer(many=True, read_only=True)
    archived = serializers.BooleanField(source="is_archived", read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "slug",
            "plan",
            "timezone",
            "contacts",
            "notes",
            "assets",
            "created_at",
            "archived",
            "archived_at",
        ]
        read_only_fields = ["created_at", "archived_at"]


class UserSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()
    customer = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "first_name", "last_name", "email", "roles", "customer", "is_active"]

    def get_roles(self, user) -> list[str]:
        return sorted(roles.role_names(user))

    def get_customer(self, user) -> str | None:
        profile = getattr(user, "profile", None)
        return profile.customer.slug if profile and profile.customer else None


class AuditEventSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor_name",
            "request_id",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "customer",
            "before",
            "after",
        ]
        read_only_fields = fields

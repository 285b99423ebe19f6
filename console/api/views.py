from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from rest_framework import mixins, viewsets

from console import roles
from console.api.base import ActorMixin
from console.api.serializers import AssetSerializer, AuditEventSerializer, CustomerSerializer, UserSerializer
from console.audit import audit_record, snapshot
from console.filters import AssetFilterSet, AuditEventFilterSet, CustomerFilterSet
from console.models import Asset, AuditEvent, Customer


class AuditedModelViewSet(ActorMixin, viewsets.ModelViewSet):
    """Create, update and delete write the audit log, before and after."""

    def perform_create(self, serializer) -> None:  # noqa: ANN001
        obj = serializer.save()
        audit_record(action=f"{obj._meta.model_name}.create", obj=obj, after=snapshot(obj))

    def perform_update(self, serializer) -> None:  # noqa: ANN001
        before = snapshot(serializer.instance)
        obj = serializer.save()
        audit_record(action=f"{obj._meta.model_name}.update", obj=obj, before=before, after=snapshot(obj))

    def perform_destroy(self, instance) -> None:  # noqa: ANN001
        audit_record(action=f"{instance._meta.model_name}.delete", obj=instance, before=snapshot(instance))
        instance.delete()


class CustomerViewSet(AuditedModelViewSet):
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet
    lookup_field = "slug"
    ordering_fields = ["name", "plan", "created_at"]

    def get_queryset(self):  # noqa: ANN201
        return Customer.objects.visible_to(self.request.user).prefetch_related(
            Prefetch("assets", queryset=Asset.objects.order_by("kind", "value"))
        )


class AssetViewSet(AuditedModelViewSet):
    serializer_class = AssetSerializer
    filterset_class = AssetFilterSet
    ordering_fields = ["value", "kind"]

    def get_queryset(self):  # noqa: ANN201
        return Asset.objects.visible_to(self.request.user).select_related("customer")


class UserViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    """Users and their roles (read only; roles are managed in the admin)."""

    serializer_class = UserSerializer

    def get_queryset(self):  # noqa: ANN201
        users = (
            get_user_model().objects.order_by("username").prefetch_related("groups").select_related("profile__customer")
        )
        if roles.is_internal(self.request.user):
            return users
        return users.filter(pk=self.request.user.pk)


class AuditEventViewSet(ActorMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The audit log: read only, filterable. There is no way to change it."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["at"]

    def get_queryset(self):  # noqa: ANN201
        if not roles.is_internal(self.request.user):
            return AuditEvent.objects.none()
        return AuditEvent.objects.select_related("customer")

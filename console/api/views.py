from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console import roles, services
from console.api.base import ActorMixin
from console.api.serializers import AssetSerializer, AuditEventSerializer, CustomerSerializer, UserSerializer
from console.audit import audit_record, snapshot
from console.filters import AssetFilterSet, AuditEventFilterSet, CustomerFilterSet
from console.models import Asset, AuditEvent, Customer
from console.permissions import IsAdminToWrite


class AuditedModelViewSet(ActorMixin, viewsets.ModelViewSet):
    """Create, update and delete write the audit log, before and after."""

    def perform_create(self, serializer) -> None:
        obj = serializer.save()
        audit_record(action=f"{obj._meta.model_name}.create", obj=obj, after=snapshot(obj))

    def perform_update(self, serializer) -> None:
        before = snapshot(serializer.instance)
        obj = serializer.save()
        audit_record(action=f"{obj._meta.model_name}.update", obj=obj, before=before, after=snapshot(obj))

    def perform_destroy(self, instance) -> None:
        audit_record(action=f"{instance._meta.model_name}.delete", obj=instance, before=snapshot(instance))
        instance.delete()


class CustomerViewSet(AuditedModelViewSet):
    """Customers: everyone reads what they may see; only an admin adds, changes, archives or deletes.

    The list leaves archived customers out unless ``?archived=only`` or ``?archived=include``; one
    customer is found by slug whether archived or not.
    """

    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet
    permission_classes = [IsAdminToWrite]
    lookup_field = "slug"
    ordering_fields = ["name", "plan", "created_at"]

    def get_queryset(self):
        return Customer.objects.visible_to(self.request.user).prefetch_related(
            Prefetch("assets", queryset=Asset.objects.order_by("kind", "value"))
        )

    def filter_queryset(self, queryset):
        # The list's filters (archived left out by default) are not a way to hide one customer.
        return queryset if self.detail else super().filter_queryset(queryset)

    def perform_destroy(self, instance: Customer) -> None:
        services.customer_delete(customer=instance, actor=self.request.user)

    @extend_schema(request=None, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, slug=None):
        """Archive the customer instead of deleting them: off the lists, their history kept."""
        customer = services.customer_archive(customer=self.get_object(), actor=request.user)
        return Response(self.get_serializer(customer).data)

    @extend_schema(request=None, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def unarchive(self, request, slug=None):
        """Bring an archived customer back to the lists."""
        customer = services.customer_unarchive(customer=self.get_object(), actor=request.user)
        return Response(self.get_serializer(customer).data)


class AssetViewSet(AuditedModelViewSet):
    """What a customer owns decides what may be blocked on their behalf: only an admin changes it."""

    serializer_class = AssetSerializer
    permission_classes = [IsAdminToWrite]
    filterset_class = AssetFilterSet
    ordering_fields = ["value", "kind"]

    def get_queryset(self):
        return Asset.objects.visible_to(self.request.user).select_related("customer")


class UserViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    """Users and their roles (read only; roles are managed in the admin)."""

    serializer_class = UserSerializer

    def get_queryset(self):
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

    def get_queryset(self):
        if not roles.is_internal(self.request.user):
            return AuditEvent.objects.none()
        return AuditEvent.objects.select_related("customer")

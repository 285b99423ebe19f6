from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from alerts import feeds, services
from alerts.api import serializers as s
from alerts.filters import AlertFilterSet, AttackFilterSet, DeliveryFilterSet, FeedFilterSet, SilenceFilterSet
from alerts.imports import import_enqueue
from alerts.models import Alert, Attack, Delivery, Feed, Silence
from console import roles
from console.api.base import ActorMixin
from console.audit import audit_record


class AlertCursorPagination(CursorPagination):
    """The alert stream: stable pages while new alerts keep arriving."""

    ordering = ("-last_seen", "-id")
    page_size = 100


def _as_drf(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class FeedViewSet(ActorMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Feeds: create (the token is answered once), edit, disable, rotate the token, import, preview, replay.

    Creating, editing, disabling and rotating need a senior engineer or an admin (they
    decide what the console accepts); importing, previewing and replaying need an acting role.
    """

    serializer_class = s.FeedSerializer
    filterset_class = FeedFilterSet
    lookup_field = "slug"

    def get_queryset(self):
        return Feed.objects.visible_to(self.request.user).select_related("customer").order_by("name")

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update", "preview"):
            return s.FeedWriteSerializer
        return s.FeedSerializer

    def _require_approver(self) -> None:
        if not roles.can_approve(self.request.user):
            raise PermissionDenied("changing a feed needs a senior engineer or an admin")

    @extend_schema(request=s.FeedWriteSerializer, responses={201: s.FeedCreatedSerializer})
    def create(self, request, *args, **kwargs):
        self._require_approver()
        data = s.FeedWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            feed, token = feeds.feed_create(values=data.validated_data, user=request.user)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        feed.secret = token
        return Response(s.FeedCreatedSerializer(feed).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.FeedWriteSerializer, responses=s.FeedSerializer)
    def update(self, request, *args, **kwargs):
        self._require_approver()
        feed = self.get_object()
        data = s.FeedWriteSerializer(feed, data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        try:
            feed = feeds.feed_update(feed=feed, changes=data.validated_data, user=request.user)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        return Response(s.FeedSerializer(feed).data)

    @extend_schema(request=None, responses=s.FeedSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, slug=None):
        """Stop accepting deliveries (the webhook answers 404, polling stops); history is kept."""
        self._require_approver()
        feed = feeds.feed_set_enabled(feed=self.get_object(), enabled=False, user=request.user)
        return Response(s.FeedSerializer(feed).data)

    @extend_schema(request=None, responses=s.FeedSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, slug=None):
        self._require_approver()
        feed = feeds.feed_set_enabled(feed=self.get_object(), enabled=True, user=request.user)
        return Response(s.FeedSerializer(feed).data)

    @extend_schema(request=None, responses=s.FeedSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, slug=None):
        """A new bearer token, answered once; the old one stops working at once."""
        self._require_approver()
        feed = self.get_object()
        token = feeds.feed_rotate_secret(feed=feed, user=request.user)
        return Response({"slug": feed.slug, "secret": token, "secret_hint": feed.secret_hint})

    @extend_schema(
        request={"multipart/form-data": s.FeedImportSerializer}, responses={202: s.FeedImportResultSerializer}
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser], url_path="import")
    def import_file(self, request, slug=None):
        """Import a file of alerts (JSON lines / EVE, gzip allowed) in chunks, through the inbox."""
        feed = self.get_object()
        data = s.FeedImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = import_enqueue(feed=feed, uploaded=data.validated_data["file"], user=request.user)
        audit_record(action="feed.import", obj=feed, after={"file": job.filename, "size": job.size})
        body = {"id": job.pk, "filename": job.filename, "size": job.size, "status": job.status}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.FeedReplaySerializer, responses={202: s.FeedReplayResultSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, slug=None):
        """Parse rejected deliveries again, and those whose alerts found no customer (after a mapping fix)."""
        feed = self.get_object()
        data = s.FeedReplaySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = feeds.feed_replay(
            feed=feed,
            user=request.user,
            delivery_ids=data.validated_data.get("deliveries"),
            unmapped=data.validated_data["unmapped"],
        )
        body = {
            "rejected": result.rejected,
            "unmapped": result.unmapped,
            "alerts_removed": result.alerts_removed,
            "deliveries": result.deliveries,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.FeedWriteSerializer, responses=s.FeedPreviewSerializer)
    @action(detail=True, methods=["post"])
    def preview(self, request, slug=None):
        """The last deliveries parsed and mapped with these settings, without saving them."""
        feed = self.get_object()
        data = s.FeedWriteSerializer(feed, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rows = feeds.feed_preview(feed=feed, unsaved=data.validated_data)
        return Response({"deliveries": s.FeedPreviewDeliverySerializer(rows, many=True).data})


class DeliveryViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.DeliverySerializer
    filterset_class = DeliveryFilterSet

    def get_queryset(self):
        return Delivery.objects.visible_to(self.request.user).select_related("feed").defer("body").order_by("-id")

    @extend_schema(request=None, responses={202: s.DeliverySerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Queue a delivery for parsing again, e.g. a dead letter after a parser fix: its attempts start again."""
        delivery = self.get_object()
        delivery = services.delivery_reprocess(delivery=delivery)
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class AlertViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = AlertFilterSet
    pagination_class = AlertCursorPagination

    def get_serializer_class(self):
        return s.AlertDetailSerializer if self.action == "retrieve" else s.AlertSerializer

    def get_queryset(self):
        return Alert.objects.visible_to(self.request.user).select_related("customer", "feed", "assignee")

    @extend_schema(request=s.AlertBulkSerializer, responses=s.BulkResultSerializer)
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Acknowledge, assign or resolve many alerts at once."""
        data = s.AlertBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alerts = list(self.get_queryset().filter(pk__in=data.validated_data["ids"]))
        act = data.validated_data["action"]
        if act == "acknowledge":
            changed = services.alerts_acknowledge(alerts=alerts, user=request.user)
        elif act == "assign":
            username = data.validated_data.get("assignee") or ""
            assignee = get_user_model().objects.filter(username=username).first() if username else None
            if username and assignee is None:
                raise ValidationError({"assignee": f"no user {username!r}"})
            changed = services.alerts_assign(alerts=alerts, assignee=assignee, user=request.user)
        else:
            changed = services.alerts_resolve(alerts=alerts, outcome=data.validated_data["outcome"], user=request.user)
        return Response({"action": act, "selected": len(alerts), "changed": changed})


class AttackViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.AttackSerializer
    filterset_class = AttackFilterSet

    def get_queryset(self):
        if not roles.is_internal(self.request.user):
            return Attack.objects.none()
        return Attack.objects.select_related("customer").order_by("-last_seen", "-id")


class SilenceViewSet(
    ActorMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = s.SilenceSerializer
    filterset_class = SilenceFilterSet

    def get_queryset(self):
        return (
            Silence.objects.visible_to(self.request.user)
            .select_related("created_by")
            .annotate(suppressed=Count("silenced_alerts"))
            .order_by("-starts_at", "-id")
        )

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        try:
            serializer.instance = services.silence_create(
                matchers=data["matchers"],
                starts_at=data.get("starts_at") or timezone.now(),
                ends_at=data["ends_at"],
                comment=data["comment"],
                user=self.request.user,
            )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc

    @extend_schema(request=None, responses=s.SilenceSerializer)
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        silence = services.silence_expire(silence=self.get_object(), user=request.user)
        return Response(s.SilenceSerializer(silence).data)

    @extend_schema(request=s.SilencePreviewSerializer, responses=s.SilencePreviewResultSerializer)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """The open alerts a silence with these matchers would match, without saving it."""
        data = s.SilencePreviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            count, alerts = services.silence_preview(matchers=data.validated_data["matchers"])
        except ValueError as exc:
            raise ValidationError({"matchers": str(exc)}) from exc
        return Response({"count": count, "alerts": s.AlertSerializer(alerts, many=True).data})

    def get_object(self):
        try:
            return super().get_object()
        except (Silence.DoesNotExist, ValueError) as exc:
            raise Http404 from exc

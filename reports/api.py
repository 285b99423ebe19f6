"""REST API of reports: list, retrieve, create (queued), share and revoke a share link."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from alerts.models import Attack
from console import roles
from console.api.base import ActorMixin
from console.models import Customer
from reports import services
from reports.models import Report, ShareLink
from tickets import selectors as ticket_selectors


def _choices_field(choices: type, help_text: str) -> serializers.CharField:
    """A read-only choice, described as a string with its values listed.

    Not an OpenAPI enum: every app has a ``status`` and a ``kind``, and enum components are
    named after the field, so a Report enum would collide with theirs.
    """

    @extend_schema_field({"type": "string", "description": f"{help_text} (one of: {', '.join(choices.values) or '-'})"})
    class Field(serializers.CharField):
        pass

    return Field(read_only=True, help_text=help_text)


class ShareLinkSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)

    class Meta:
        model = ShareLink
        fields = ["id", "hint", "created_at", "expires_at", "revoked_at", "access_count", "last_accessed_at", "state"]
        read_only_fields = fields


class ReportSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    kind = _choices_field(Report.Kind, "incident (an attack or a ticket) or period")
    status = _choices_field(Report.Status, "queued, running, done or failed")
    schedule = _choices_field(Report.Schedule, "empty for a report on request, else weekly or monthly")
    html_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()
    csv_url = serializers.SerializerMethodField()
    json_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "customer",
            "kind",
            "title",
            "parameters",
            "period_start",
            "period_end",
            "timezone",
            "schedule",
            "status",
            "progress",
            "error",
            "pdf_error",
            "created_at",
            "generated_at",
            "sent_at",
            "sent_to",
            "html_url",
            "pdf_url",
            "csv_url",
            "json_url",
        ]
        read_only_fields = fields

    def get_html_url(self, obj: Report) -> str:
        return obj.get_absolute_url()

    def get_pdf_url(self, obj: Report) -> str | None:
        return reverse("report-download", args=[obj.pk, "pdf"]) if obj.pdf else None

    def get_csv_url(self, obj: Report) -> str | None:
        return reverse("report-download", args=[obj.pk, "csv"]) if obj.is_ready else None

    def get_json_url(self, obj: Report) -> str | None:
        return reverse("report-download", args=[obj.pk, "json"]) if obj.is_ready else None


class ReportDetailSerializer(ReportSerializer):
    share_links = ShareLinkSerializer(many=True, read_only=True)

    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "figures", "share_links"]
        read_only_fields = fields


class ReportCreateSerializer(serializers.Serializer):
    """One of: ``attack``; ``ticket``; or ``customer`` with ``start`` and ``end`` (local days, inclusive)."""

    attack = serializers.IntegerField(required=False)
    ticket = serializers.CharField(required=False, max_length=20)
    customer = serializers.SlugField(required=False)
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("attack", "ticket") if attrs.get(k)]
        if len(given) > 1:
            raise ValidationError("give an attack or a ticket, not both")
        if not given and not (attrs.get("customer") and attrs.get("start") and attrs.get("end")):
            raise ValidationError("give an attack, a ticket, or a customer with start and end")
        return attrs


class ShareInputSerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=90)


class RevokeInputSerializer(serializers.Serializer):
    link = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class ReportViewSet(
    ActorMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Attack reports; a customer viewer sees their own customer's reports only."""

    filterset_fields = ["kind", "status", "schedule"]
    ordering_fields = ["created_at", "generated_at"]

    def get_queryset(self):
        qs = Report.objects.visible_to(self.request.user).select_related("customer").order_by("-created_at", "-id")
        if self.action == "retrieve":
            qs = qs.prefetch_related("share_links")
        return qs

    def get_serializer_class(self):
        if self.action == "create":
            return ReportCreateSerializer
        if self.action == "share":
            return ShareInputSerializer
        if self.action == "revoke_share":
            return RevokeInputSerializer
        return ReportDetailSerializer if self.action == "retrieve" else ReportSerializer

    @extend_schema(
        request=ReportCreateSerializer,
        responses={
            201: ReportSerializer,
            404: OpenApiResponse(description="The attack, ticket or customer named is not one the user may see."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = ReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = request.user
        try:
            if v.get("attack"):
                attack = Attack.objects.visible_to(user).filter(pk=v["attack"]).first()
                if attack is None:
                    raise NotFound("no such attack")
                report = services.report_request(user=user, attack=attack)
            elif v.get("ticket"):
                ticket = ticket_selectors.ticket_by_number(v["ticket"], user=user)
                if ticket is None:
                    raise NotFound("no such ticket")
                report = services.report_request(user=user, ticket=ticket)
            else:
                customer = Customer.objects.visible_to(user).filter(slug=v["customer"]).first()
                if customer is None:
                    raise NotFound("no such customer")
                report = services.report_request(user=user, customer=customer, start=v["start"], end=v["end"])
        except services.ReportError as exc:
            raise ValidationError(str(exc)) from exc
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)

    def _require_actor(self) -> None:
        if not roles.can_act(self.request.user):
            raise PermissionDenied("only engineers share reports")

    @extend_schema(
        request=ShareInputSerializer,
        responses={
            201: inline_serializer(
                "ReportShareCreated",
                {"link": ShareLinkSerializer(), "url": serializers.CharField(help_text="shown once")},
            )
        },
    )
    @action(detail=True, methods=["post"])
    def share(self, request: Request, pk: str | None = None) -> Response:
        """Make a read-only share link; its URL (with the token) is in this answer only."""
        self._require_actor()
        report = self.get_object()
        data = ShareInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not report.is_ready:
            raise ValidationError("the report is not ready yet")
        link, token = services.share_link_create(report=report, user=request.user, days=data.validated_data.get("days"))
        return Response(
            {"link": ShareLinkSerializer(link).data, "url": request.build_absolute_uri(f"/share/{token}/")},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=RevokeInputSerializer, responses={200: ShareLinkSerializer})
    @action(detail=True, methods=["post"], url_path="revoke-share")
    def revoke_share(self, request: Request, pk: str | None = None) -> Response:
        self._require_actor()
        report = self.get_object()
        data = RevokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = ShareLink.objects.filter(report=report, pk=data.validated_data["link"]).first()
        if link is None:
            raise NotFound("no such share link")
        return Response(ShareLinkSerializer(services.share_link_revoke(link=link, user=request.user)).data)

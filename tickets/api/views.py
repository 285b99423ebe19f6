"""The tickets API: reads, creation from alerts, and one @action per verb, each calling a service."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from alerts.models import Alert
from console import errors, roles
from console.api.base import ActorMixin
from console.models import Customer
from console.permissions import IsConsoleUser
from tickets import selectors, services
from tickets.api import serializers as s
from tickets.filters import TicketFilterSet
from tickets.messages import MessageTemplateError
from tickets.models import Ticket, TicketTemplate


def _invalid(exc: Exception) -> ValidationError:
    """A 400 with the reason; a state conflict (409) or role refusal (403) is raised as it is."""
    errors.reraise_refusal(exc)
    return ValidationError({"detail": str(exc)})


class StaffOrNotFound(IsConsoleUser):
    """Tickets exist only for staff: anyone else gets an empty list and 404s, never a 403 that says "it is there"."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user and user.is_authenticated and not roles.is_internal(user) and request.method not in SAFE_METHODS:
            raise NotFound()
        return super().has_permission(request, view)


class TicketViewSet(ActorMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Incident tickets (staff only). Status and every change go through the actions."""

    permission_classes = [StaffOrNotFound]
    serializer_class = s.TicketSerializer
    filterset_class = TicketFilterSet
    lookup_field = "number"
    lookup_value_regex = r"[A-Za-z0-9-]+"
    ordering_fields = ["created_at", "severity", "status", "updated_at"]

    def get_queryset(self):
        return selectors.ticket_list_queryset(self.request.user).prefetch_related("alerts", "attacks")

    def _out(self, ticket: Ticket, code: int = status.HTTP_200_OK) -> Response:
        ticket = self.get_queryset().get(pk=ticket.pk)
        return Response(s.TicketSerializer(ticket, context={"request": self.request}).data, status=code)

    @extend_schema(request=s.TicketCreateSerializer, responses={201: s.TicketSerializer})
    def create(self, request, *args, **kwargs):
        """Open a ticket from alerts (prefilled from them), or by hand for a customer."""
        data = s.TicketCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            if v.get("alerts"):
                alerts = list(Alert.objects.visible_to(request.user).filter(pk__in=v["alerts"]))
                if len(alerts) != len(set(v["alerts"])):
                    raise ValidationError({"alerts": "some alerts do not exist"})
                ticket = services.ticket_create_from_alerts(
                    alerts=alerts,
                    user=request.user,
                    title=v.get("title", ""),
                    severity=v.get("severity", ""),
                    summary=v.get("summary", ""),
                )
                if v.get("tags"):
                    services.ticket_update(ticket=ticket, user=request.user, tags=v["tags"])
            else:
                customer = Customer.objects.visible_to(request.user).filter(slug=v["customer"]).first()
                if customer is None:
                    raise ValidationError({"customer": f"no customer {v['customer']!r}"})
                ticket = services.ticket_create(
                    customer=customer,
                    title=v["title"],
                    severity=v.get("severity", Ticket.Severity.P3),
                    summary=v.get("summary", ""),
                    tags=v.get("tags"),
                    user=request.user,
                )
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        return self._out(ticket, status.HTTP_201_CREATED)

    @extend_schema(request=s.TicketUpdateSerializer, responses=s.TicketSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Edit title, summary, severity or tags."""
        data = s.TicketUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = services.ticket_update(ticket=self.get_object(), user=request.user, **data.validated_data)
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        return self._out(ticket)

    @extend_schema(request=s.TransitionSerializer, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, number=None):
        """Move the ticket along its workflow; refused moves answer 400 with the reason."""
        data = s.TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            ticket = services.ticket_transition(
                ticket=self.get_object(),
                to=v["to"],
                user=request.user,
                outcome=v.get("outcome", ""),
                comment=v.get("comment", ""),
                expected=v.get("expected", ""),
            )
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        return self._out(ticket)

    @extend_schema(request=s.AssignSerializer, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, number=None):
        data = s.AssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data.get("assignee") or ""
        assignee = None
        if username:
            assignee = get_user_model().objects.filter(groups__name__in=roles.ACTING_ROLES, username=username).first()
            if assignee is None:
                raise ValidationError({"assignee": f"no engineer {username!r}"})
        ticket = services.ticket_assign(ticket=self.get_object(), assignee=assignee, user=request.user)
        return self._out(ticket)

    @extend_schema(request=s.EscalateSerializer, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def escalate(self, request, number=None):
        """Hand the ticket to another level with a handoff summary; notifies the SOC."""
        data = s.EscalateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = services.ticket_escalate(ticket=self.get_object(), user=request.user, **data.validated_data)
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        return self._out(ticket)

    @extend_schema(request=s.LinkAlertsSerializer, responses=s.LinkResultSerializer)
    @action(detail=True, methods=["post"])
    def link_alerts(self, request, number=None):
        """Add alerts (and their attacks) of the ticket's customer."""
        data = s.LinkAlertsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ticket = self.get_object()
        alerts = list(Alert.objects.visible_to(request.user).filter(pk__in=data.validated_data["alerts"]))
        try:
            linked = services.ticket_add_alerts(ticket=ticket, alerts=alerts, user=request.user)
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        ticket = self.get_queryset().get(pk=ticket.pk)
        return Response({"linked": linked, "ticket": s.TicketSerializer(ticket).data})

    @extend_schema(request=s.NoteSerializer, responses={201: s.TimelineEntrySerializer})
    @action(detail=True, methods=["post"])
    def add_note(self, request, number=None):
        """An internal note: staff only, never sent to the customer."""
        data = s.NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            entry = services.ticket_add_note(
                ticket=self.get_object(), body=data.validated_data["body"], user=request.user
            )
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.SendMessageSerializer,
        responses={200: s.MessagePreviewSerializer, 201: s.TimelineEntrySerializer},
    )
    @action(detail=True, methods=["post"])
    def send_message(self, request, number=None):
        """Email the customer's contacts (or, with ``preview``, render the template only)."""
        data = s.SendMessageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        ticket = self.get_object()
        template = None
        if v.get("template"):
            template = TicketTemplate.objects.filter(slug=v["template"]).first()
            if template is None:
                raise ValidationError({"template": f"no template {v['template']!r}"})
        try:
            if v["preview"]:
                subject, body = v["subject"], v["body"]
                if template is not None:
                    rendered = services.ticket_preview_message(ticket=ticket, template=template, user=request.user)
                    subject, body = subject or rendered[0], body or rendered[1]
                recipients = services.customer_recipients(ticket.customer)
                return Response({"subject": subject, "body": body, "recipients": recipients})
            entry = services.ticket_send_customer_message(
                ticket=ticket, user=request.user, template=template, subject=v["subject"], body=v["body"]
            )
        except (services.TicketError, MessageTemplateError) as exc:
            raise _invalid(exc) from exc
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ContactSerializer, responses={201: s.TimelineEntrySerializer})
    @action(detail=True, methods=["post"])
    def log_contact(self, request, number=None):
        """A phone call or chat with the customer, written down by hand."""
        data = s.ContactSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            entry = services.ticket_log_contact(ticket=self.get_object(), user=request.user, **data.validated_data)
        except services.TicketError as exc:
            raise _invalid(exc) from exc
        return Response(s.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses=s.TimelineEntrySerializer(many=True),
        parameters=[OpenApiParameter("visibility", str, enum=["internal", "customer"], required=False)],
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def timeline(self, request, number=None):
        """Every event of the ticket, oldest first."""
        entries = selectors.ticket_timeline(self.get_object(), request.user)
        if request.query_params.get("visibility") in ("internal", "customer"):
            entries = entries.filter(visibility=request.query_params["visibility"])
        return Response(s.TimelineEntrySerializer(entries, many=True).data)


class TicketTemplateViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    """Customer message templates (edited by admins in the admin site)."""

    serializer_class = s.TicketTemplateSerializer
    lookup_field = "slug"
    pagination_class = None

    def get_queryset(self):
        if not roles.is_internal(self.request.user):
            return TicketTemplate.objects.none()
        return TicketTemplate.objects.order_by("position", "name")

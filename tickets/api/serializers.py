from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets import selectors
from tickets.models import Ticket, TicketTemplate, TimelineEntry


class SlaClockSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    state = serializers.ChoiceField(choices=["ok", "at_risk", "breached", "met"])
    target_seconds = serializers.IntegerField()
    elapsed_seconds = serializers.FloatField()
    remaining_seconds = serializers.FloatField()
    paused = serializers.BooleanField()
    running = serializers.BooleanField()
    stopped_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)


class TicketSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    alerts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    attacks = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    sla = serializers.SerializerMethodField()
    allowed_transitions = serializers.SerializerMethodField()
    # Blank unless the ticket waits on the customer: the schema must allow "".
    status_before_wait = serializers.ChoiceField(choices=Ticket.Status.choices, read_only=True, allow_blank=True)

    class Meta:
        model = Ticket
        fields = [
            "number",
            "customer",
            "title",
            "summary",
            "severity",
            "status",
            "status_before_wait",
            "allowed_transitions",
            "outcome",
            "assignee",
            "escalation_level",
            "escalation_reason",
            "tags",
            "alerts",
            "attacks",
            "event_at",
            "detected_at",
            "created_at",
            "acknowledged_at",
            "first_update_at",
            "mitigated_at",
            "resolved_at",
            "closed_at",
            "updated_at",
            "sla_state",
            "sla",
        ]
        read_only_fields = fields

    @extend_schema_field(SlaClockSerializer(many=True))
    def get_sla(self, ticket: Ticket) -> list[dict[str, Any]]:
        return selectors.ticket_sla(ticket)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_transitions(self, ticket: Ticket) -> list[str]:
        return sorted(ticket.allowed_targets())


class TicketCreateSerializer(serializers.Serializer):
    """Either ``alerts`` (prefilled from them) or ``customer`` and ``title``."""

    alerts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, max_length=1000
    )
    customer = serializers.SlugField(required=False)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300)
    severity = serializers.ChoiceField(choices=Ticket.Severity.choices, required=False)
    summary = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("alerts") and not (data.get("customer") and data.get("title")):
            raise serializers.ValidationError("give alerts, or a customer and a title")
        return data


class TicketUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, max_length=300)
    summary = serializers.CharField(required=False, allow_blank=True)
    severity = serializers.ChoiceField(choices=Ticket.Severity.choices, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)


class TransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Ticket.Status.choices)
    outcome = serializers.ChoiceField(choices=Ticket.Outcome.choices, required=False, default="")
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    expected = serializers.ChoiceField(
        choices=Ticket.Status.choices, required=False, help_text="the status you saw: refuses a stale change"
    )


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(allow_blank=True, allow_null=True, help_text="username; empty for nobody")


class EscalateSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=Ticket.EscalationLevel.choices)
    reason = serializers.CharField(help_text="handoff summary")


class LinkAlertsSerializer(serializers.Serializer):
    alerts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=1000
    )


class LinkResultSerializer(serializers.Serializer):
    linked = serializers.IntegerField()
    ticket = TicketSerializer()


class NoteSerializer(serializers.Serializer):
    body = serializers.CharField()


class SendMessageSerializer(serializers.Serializer):
    template = serializers.SlugField(required=False, help_text="a ticket template; its text is the default")
    subject = serializers.CharField(required=False, allow_blank=True, default="")
    body = serializers.CharField(required=False, allow_blank=True, default="")
    preview = serializers.BooleanField(default=False, help_text="render only, send nothing")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("template") and not (data.get("subject") and data.get("body")):
            raise serializers.ValidationError("give a template, or a subject and a body")
        return data


class MessagePreviewSerializer(serializers.Serializer):
    subject = serializers.CharField()
    body = serializers.CharField()
    recipients = serializers.ListField(child=serializers.CharField())


class ContactSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=["phone", "chat", "email", "meeting"])
    direction = serializers.ChoiceField(choices=["outbound", "inbound"], default="outbound")
    contact = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    summary = serializers.CharField()
    visibility = serializers.ChoiceField(
        choices=["internal", "customer"],
        default="internal",
        help_text="internal (the default) or customer: shown in the customer's reports",
    )


class TimelineEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "actor_name", "kind", "visibility", "body", "data", "delivery_status"]
        read_only_fields = fields


class TicketTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketTemplate
        fields = ["slug", "name", "subject", "body", "position", "updated_at"]
        read_only_fields = fields

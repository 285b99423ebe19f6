"""Input and output serializers of the mitigations API; the state is read-only, changed by actions."""

from __future__ import annotations

from rest_framework import serializers

from mitigations.backends import BACKENDS
from mitigations.listformats import FORMATS
from mitigations.models import Approval, GlobalAllowlistEntry, ListItem, Mitigation, MitigationEvent, MitigationList


class ApprovalSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Approval
        fields = ["user", "at", "comment"]


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MitigationEvent
        fields = ["at", "actor_name", "from_state", "to_state", "message"]


class MitigationSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    customer = serializers.CharField(source="customer.slug", read_only=True)
    ticket = serializers.CharField(source="ticket.number", read_only=True, default=None, allow_null=True)
    mitigation_list = serializers.CharField(
        source="mitigation_list.name", read_only=True, default=None, allow_null=True
    )
    author = serializers.CharField(source="author.username", read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)
    enforcement_target = serializers.CharField(
        source="enforcement_target.name", read_only=True, default=None, allow_null=True
    )
    seconds_left = serializers.SerializerMethodField()

    class Meta:
        model = Mitigation
        fields = [
            "id", "name", "customer", "ticket", "attack", "title", "kind", "expression", "value", "mitigation_list",
            "action", "enforcement_target", "targets", "options", "rate", "ttl_seconds", "state", "author", "approvals",
            "required_approvals", "approval_reasons", "blast_radius", "safety_override", "simulation", "simulated_at",
            "compile_errors", "error",
            "progress", "hits", "drift", "created_at", "proposed_at", "approved_at", "applied_at", "expires_at",
            "ended_at", "seconds_left",
        ]  # fmt: skip
        read_only_fields = fields

    def get_seconds_left(self, obj: Mitigation) -> int | None:
        return obj.seconds_left() if obj.state == Mitigation.State.ACTIVE else None


class MitigationDetailSerializer(MitigationSerializer):
    events = EventSerializer(many=True, read_only=True)
    enforcement = serializers.SerializerMethodField(
        help_text='what the ledger says is installed: "applied (3 of 3)", "partially applied (2 of 3): on ..."'
    )
    all_targets = serializers.SerializerMethodField(help_text="every configured target's name, first one first")

    def get_enforcement(self, obj: Mitigation) -> str:
        from mitigations import ledger

        return ledger.summary(obj)

    def get_all_targets(self, obj: Mitigation) -> list[str]:
        return [t.name for t in obj.configured_targets()]

    class Meta(MitigationSerializer.Meta):
        fields = [
            *MitigationSerializer.Meta.fields, "all_targets", "enforcement", "compiled", "backend_answers", "events"
        ]  # fmt: skip
        read_only_fields = fields


class MitigationCreateSerializer(serializers.Serializer):
    customer = serializers.SlugField(help_text="the customer's slug")
    kind = serializers.ChoiceField(choices=Mitigation.Kind.choices)
    expression = serializers.CharField(required=False, allow_blank=True, default="")
    value = serializers.CharField(required=False, allow_blank=True, default="", help_text="IP access rules")
    mitigation_list = serializers.SlugField(required=False, allow_blank=True, default="", help_text="IP lists: name")
    action = serializers.ChoiceField(choices=Mitigation.Action.choices, default="block")
    target = serializers.SlugField(
        required=False, allow_blank=True, default="", help_text="a configured enforcement target's name; empty: export"
    )
    also_targets = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        default=list,
        max_length=20,
        help_text="further configured targets to enforce it on as well (two namespaces and a zone, say)",
    )
    targets = serializers.ListField(
        child=serializers.ChoiceField(choices=BACKENDS),
        required=False,
        default=list,
        help_text='deprecated: only ["export"] (or the chosen target\'s kind) is accepted',
    )
    ttl_seconds = serializers.IntegerField(min_value=1, required=False)
    rate = serializers.DictField(required=False, default=dict)
    options = serializers.DictField(required=False, default=dict)
    attack = serializers.IntegerField(required=False, allow_null=True, default=None)
    ticket = serializers.CharField(required=False, allow_blank=True, default="", help_text="SW-2026-0001")
    title = serializers.CharField(required=False, allow_blank=True, default="")
    propose = serializers.BooleanField(default=False, help_text="propose at once (refused if unsafe)")


class TrafficRowsSerializer(serializers.Serializer):
    attack = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        allow_null=True,
        default=None,
        help_text='records with rule-field keys: [{"ip.src": "198.51.100.7", ...}]',
    )
    baseline = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True, default=None)


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class BulkApproveSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=100
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class BulkApproveItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class BulkApproveResultSerializer(serializers.Serializer):
    results = BulkApproveItemSerializer(many=True)


class OverrideSafetySerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="why the safety check does not apply here (audited)")


class ExtendSerializer(serializers.Serializer):
    seconds = serializers.IntegerField(min_value=60)


class RollbackSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ListItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ListItem
        fields = ["id", "value", "expires_at", "comment", "added_at"]
        read_only_fields = ["id", "added_at"]


class MitigationListSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    item_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = MitigationList
        fields = [
            "id",
            "name",
            "customer",
            "purpose",
            "description",
            "source",
            "item_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MitigationListCreateSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[a-z0-9_]{1,50}$")
    purpose = serializers.ChoiceField(choices=MitigationList.Purpose.choices, default="block")
    customer = serializers.SlugField(required=False, allow_blank=True, default="", help_text="empty: a global list")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    source = serializers.CharField(required=False, allow_blank=True, default="")


class ListImportSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="plain CIDR per line, Spamhaus DROP or FireHOL netset")
    format = serializers.ChoiceField(choices=FORMATS, default="auto")
    ttl_seconds = serializers.IntegerField(
        min_value=1, max_value=ListItem.MAX_TTL_SECONDS, required=False, allow_null=True, default=None
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ListImportResultSerializer(serializers.Serializer):
    format = serializers.CharField()
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    refused = serializers.ListField(child=serializers.CharField())
    errors = serializers.ListField(child=serializers.CharField())


class GlobalAllowlistEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = GlobalAllowlistEntry
        fields = ["id", "value", "reason", "created_at"]
        read_only_fields = fields

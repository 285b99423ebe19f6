from rest_framework import serializers

from alerts.models import Alert, Attack, Delivery, Feed, Silence


class FeedSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    health = serializers.CharField(read_only=True)
    ingest_path = serializers.CharField(read_only=True)
    # Empty for push feeds: a plain string in the schema, not format "uri" (which "" contradicts).
    pull_url = serializers.CharField(read_only=True)

    class Meta:
        model = Feed
        fields = [
            "id",
            "name",
            "slug",
            "format",
            "enabled",
            "mode",
            "customer",
            "customer_label",
            "options",
            "max_body_bytes",
            "rate_limit_per_minute",
            "pull_url",
            "pull_interval",
            "secret_hint",
            "health",
            "ingest_path",
            "last_delivery_at",
            "delivery_count",
            "error_count",
            "last_error",
            "last_error_at",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    feed = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    size = serializers.IntegerField(read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "feed",
            "received_at",
            "source",
            "status",
            "error",
            "attempts",
            "processed_at",
            "size",
            "alerts_created",
            "alerts_updated",
            "alerts_resolved",
            "skipped",
            "headers",
        ]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    feed = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    target = serializers.CharField(read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "customer",
            "feed",
            "attack",
            "delivery",
            "external_id",
            "fingerprint",
            "title",
            "description",
            "layer",
            "vector",
            "severity",
            "target",
            "target_ip",
            "target_port",
            "target_host",
            "zone",
            "pps",
            "bps",
            "rps",
            "packets",
            "bytes",
            "source_ips",
            "source_asns",
            "source_countries",
            "direction_rule",
            "labels",
            "event_time",
            "first_seen",
            "last_seen",
            "ended_at",
            "count",
            "status",
            "outcome",
            "assignee",
            "silence",
            "urgency",
            "urgency_reasons",
            "acknowledged_at",
            "resolved_at",
        ]
        read_only_fields = fields


class AlertDetailSerializer(AlertSerializer):
    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "raw"]
        read_only_fields = fields


class AlertBulkSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=1000
    )
    action = serializers.ChoiceField(choices=["acknowledge", "assign", "resolve"])
    assignee = serializers.CharField(required=False, allow_blank=True)
    outcome = serializers.ChoiceField(choices=Alert.Outcome.choices, required=False, default="")


class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    selected = serializers.IntegerField()
    changed = serializers.IntegerField()


class AttackSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Attack
        fields = [
            "id",
            "customer",
            "target",
            "title",
            "vectors",
            "layer",
            "severity",
            "started_at",
            "last_seen",
            "ended_at",
            "ongoing",
            "peak_bps",
            "peak_pps",
            "peak_rps",
            "peak_at",
            "alert_count",
            "mitigated",
            "urgency",
            "urgency_reasons",
            "summary",
            "summarized_at",
        ]
        read_only_fields = fields


class MatcherSerializer(serializers.Serializer):
    field = serializers.CharField()
    op = serializers.ChoiceField(choices=Silence.OPERATORS)
    value = serializers.CharField(allow_blank=True)


class SilenceSerializer(serializers.ModelSerializer):
    matchers = MatcherSerializer(many=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = ["id", "matchers", "starts_at", "ends_at", "comment", "created_by", "created_at", "active"]
        read_only_fields = ["created_by", "created_at", "active"]

    def get_active(self, silence: Silence) -> bool:
        return silence.is_active()


class SilencePreviewSerializer(serializers.Serializer):
    matchers = MatcherSerializer(many=True)


class SilencePreviewResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    alerts = AlertSerializer(many=True)

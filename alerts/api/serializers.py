from django.core.validators import URLValidator
from rest_framework import serializers

from alerts.feeds import FEED_EDITABLE_FIELDS
from alerts.models import Alert, Attack, Delivery, Feed, Silence
from console.models import Customer


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
            "auto_resolve_minutes",
            "auto_resolve_after_minutes",
            "expected_interval_minutes",
            "silent_alerted_at",
        ]
        read_only_fields = fields

    auto_resolve_after_minutes = serializers.IntegerField(
        source="auto_resolve_in_force_minutes",
        read_only=True,
        allow_null=True,
        help_text="The auto-resolve in force (the feed's own or its format's default); null: never.",
    )


class FeedWriteSerializer(serializers.ModelSerializer):
    """Create (with a slug) and update (without) a feed: the settings in alerts.feeds.FEED_EDITABLE_FIELDS."""

    customer = serializers.SlugRelatedField(
        slug_field="slug", queryset=Customer.objects.all(), allow_null=True, required=False
    )
    pull_url = serializers.CharField(allow_blank=True, required=False, max_length=200)
    signing_key = serializers.CharField(allow_blank=True, required=False, write_only=True, max_length=128)

    class Meta:
        model = Feed
        fields = ["slug", *FEED_EDITABLE_FIELDS]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None:
            # A feed's slug is its webhook URL: senders are configured with it.
            self.fields["slug"].read_only = True

    def validate_pull_url(self, value: str) -> str:
        if value:
            URLValidator(schemes=["http", "https"])(value)
        return value

    def validate_options(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("options must be a JSON object")
        return value

    def validate(self, attrs):
        mode = attrs.get("mode", getattr(self.instance, "mode", Feed.Mode.PUSH))
        url = attrs.get("pull_url", getattr(self.instance, "pull_url", ""))
        if mode == Feed.Mode.PULL and not url:
            raise serializers.ValidationError({"pull_url": "a pull feed needs a URL to poll"})
        return attrs


class FeedCreatedSerializer(FeedSerializer):
    secret = serializers.CharField(read_only=True, help_text="The bearer token: shown this once, stored hashed.")

    class Meta(FeedSerializer.Meta):
        fields = [*FeedSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class FeedSecretSerializer(serializers.Serializer):
    slug = serializers.CharField()
    secret = serializers.CharField(help_text="The new bearer token: shown this once; the old one no longer works.")
    secret_hint = serializers.CharField()


class FeedImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JSON lines or EVE JSON, optionally gzipped")


class FeedImportResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    size = serializers.IntegerField()
    status = serializers.CharField()


class FeedReplaySerializer(serializers.Serializer):
    deliveries = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=5000,
        help_text="default: all",
    )
    unmapped = serializers.BooleanField(
        default=True, help_text="also processed deliveries whose alerts found no customer"
    )


class FeedReplayResultSerializer(serializers.Serializer):
    rejected = serializers.IntegerField()
    unmapped = serializers.IntegerField()
    alerts_removed = serializers.IntegerField()
    deliveries = serializers.IntegerField()


class PreviewAlertSerializer(serializers.Serializer):
    title = serializers.CharField()
    vector = serializers.CharField()
    severity = serializers.CharField()
    target = serializers.CharField()
    customer = serializers.CharField(help_text="customer slug; empty: unassigned")
    sources = serializers.ListField(child=serializers.CharField())
    resolved = serializers.BooleanField()


class FeedPreviewDeliverySerializer(serializers.Serializer):
    delivery = serializers.IntegerField(source="delivery.pk")
    received_at = serializers.DateTimeField(source="delivery.received_at")
    status = serializers.CharField(source="delivery.status", help_text="as stored, before this preview")
    error = serializers.CharField(help_text="why these settings cannot parse it; empty when they can")
    total = serializers.IntegerField(help_text="alerts parsed")
    unassigned = serializers.IntegerField(help_text="of the alerts shown, those mapped to no customer")
    skipped = serializers.DictField(child=serializers.IntegerField())
    alerts = PreviewAlertSerializer(many=True)


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
            "refused",
            "queued_at",
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
    suppressed = serializers.SerializerMethodField(help_text="alerts this silence took out of the queue")

    class Meta:
        model = Silence
        fields = [
            "id",
            "matchers",
            "starts_at",
            "ends_at",
            "comment",
            "created_by",
            "created_at",
            "active",
            "suppressed",
        ]
        read_only_fields = ["created_by", "created_at", "active", "suppressed"]

    def get_active(self, silence: Silence) -> bool:
        return silence.is_active()

    def get_suppressed(self, silence: Silence) -> int:
        annotated = getattr(silence, "suppressed", None)
        return annotated if annotated is not None else silence.silenced_alerts.count()


class SilencePreviewSerializer(serializers.Serializer):
    matchers = MatcherSerializer(many=True)


class SilencePreviewResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    alerts = AlertSerializer(many=True)


class FeedPreviewSerializer(serializers.Serializer):
    deliveries = FeedPreviewDeliverySerializer(many=True, help_text="newest first")

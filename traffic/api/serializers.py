from rest_framework import serializers

from alerts.models import Attack
from console.models import Customer
from traffic.models import TrafficSample


class TrafficSampleSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", queryset=Customer.objects.all())
    attack = serializers.PrimaryKeyRelatedField(queryset=Attack.objects.all(), required=False, allow_null=True)
    file = serializers.FileField(write_only=True)

    class Meta:
        model = TrafficSample
        fields = [
            "id",
            "customer",
            "attack",
            "name",
            "label",
            "kind",
            "file",
            "size",
            "status",
            "progress",
            "errors",
            "record_count",
            "start_at",
            "end_at",
            "created_at",
            "parsed_at",
        ]
        read_only_fields = [
            "name",
            "size",
            "status",
            "progress",
            "errors",
            "record_count",
            "start_at",
            "end_at",
            "created_at",
            "parsed_at",
        ]
        extra_kwargs = {"kind": {"required": False}}


class TrafficSampleDetailSerializer(TrafficSampleSerializer):
    class Meta(TrafficSampleSerializer.Meta):
        fields = [*TrafficSampleSerializer.Meta.fields, "summary"]
        read_only_fields = [*TrafficSampleSerializer.Meta.read_only_fields, "summary"]


class CompareQuerySerializer(serializers.Serializer):
    baseline = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)


class SimulateSerializer(serializers.Serializer):
    expression = serializers.CharField(max_length=16384)
    baseline = serializers.IntegerField(required=False, allow_null=True)


class SimulationResultSerializer(serializers.Serializer):
    expression = serializers.CharField()
    layer = serializers.CharField()
    attack = serializers.DictField(required=False)
    baseline = serializers.DictField(required=False)

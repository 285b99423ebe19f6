from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from console.api.base import ActorMixin
from console.permissions import get_visible_or_404
from mitigations.rules import RuleError
from traffic import services
from traffic.api import serializers as s
from traffic.models import TrafficSample


class TrafficSampleViewSet(
    ActorMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Upload captures and request logs; read their summaries; compare; simulate rules."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["label", "kind", "status"]

    def get_serializer_class(self):
        return s.TrafficSampleDetailSerializer if self.action == "retrieve" else s.TrafficSampleSerializer

    def get_queryset(self):
        return TrafficSample.objects.visible_to(self.request.user).select_related("customer").order_by("-id")

    def perform_create(self, serializer) -> None:
        data = serializer.validated_data
        uploaded = data["file"]
        serializer.instance = services.sample_create(
            customer=data["customer"],
            name=uploaded.name,
            fileobj=uploaded,
            label=data.get("label", "unknown"),
            kind=data.get("kind", ""),
            attack=data.get("attack"),
            user=self.request.user,
        )

    @extend_schema(parameters=[OpenApiParameter("baseline", int, required=False)], responses=dict)
    @action(detail=True, methods=["get"])
    def compare(self, request, pk=None):
        """This (attack) sample against a baseline sample: ranked attributes and candidate signatures."""
        attack = self.get_object()  # first: another customer's sample is 404 whatever the query
        query = s.CompareQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        baseline_id = query.validated_data.get("baseline")  # none: the automatic baseline
        baseline = (
            get_visible_or_404(TrafficSample.objects.all(), request.user, pk=baseline_id) if baseline_id else None
        )
        try:
            return Response(services.samples_compare(attack=attack, baseline=baseline))
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc

    @extend_schema(request=s.SimulateSerializer, responses=s.SimulationResultSerializer)
    @action(detail=True, methods=["post"])
    def simulate(self, request, pk=None):
        """A rule expression over this sample (and a baseline): share matched, top values, examples."""
        data = s.SimulateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        baseline_id = data.validated_data.get("baseline")
        baseline = (
            get_visible_or_404(TrafficSample.objects.all(), request.user, pk=baseline_id) if baseline_id else None
        )
        try:
            result = services.sample_simulate(
                expression=data.validated_data["expression"], attack=self.get_object(), baseline=baseline
            )
        except RuleError as exc:
            raise ValidationError({"expression": str(exc)}) from exc
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(result)

"""The mitigations API: a few lines per viewset; every state change is an action calling a service."""

from __future__ import annotations

from contextlib import contextmanager

from django.db.models import Count, Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from alerts.models import Attack
from console import errors, roles
from console.api.base import ActorMixin
from console.lazy import lazy_module
from console.models import Customer
from mitigations import services
from mitigations.api import serializers as s
from mitigations.filters import MitigationFilterSet, MitigationListFilterSet
from mitigations.models import Approval, EnforcementTarget, GlobalAllowlistEntry, Mitigation, MitigationList
from mitigations.rules import RuleError

pa = lazy_module("pyarrow")  # only the simulate action reads rows into a table (console/lazy.py)


@contextmanager
def refusals():
    """Service refusals become 400s with the reason (and the position for a malformed rule).

    Role refusals (403) and state conflicts (409) pass through to ``console.errors.api_exception_handler``.
    """
    try:
        yield
    except RuleError as exc:
        raise ValidationError({"expression": [exc.message], "position": exc.position}) from exc
    except services.MitigationError as exc:
        errors.reraise_refusal(exc)
        raise ValidationError({"detail": str(exc)}) from exc


ROWS_REFUSED = (
    "each field must hold values of one type, the type the rule field has: text in valid Unicode, integers of 64 bits"
)


def _rows_table(rows: list[dict] | None, field: str) -> pa.Table | None:
    """Records a client sent, as a table; a column that mixes types or text that is not Unicode is a 400."""
    if not rows:
        return None
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, UnicodeError, OverflowError) as exc:  # OverflowError: an integer past 64 bits
        raise ValidationError({field: [ROWS_REFUSED]}) from exc


class MitigationViewSet(ActorMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    filterset_class = MitigationFilterSet
    ordering_fields = ["created_at", "expires_at", "state"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.MitigationDetailSerializer
        if self.action == "create":
            return s.MitigationCreateSerializer
        return s.MitigationSerializer

    def get_queryset(self):
        return (
            Mitigation.objects.visible_to(self.request.user)
            .select_related("customer", "author", "ticket", "mitigation_list")
            .prefetch_related(Prefetch("approvals", queryset=Approval.objects.select_related("user")))
            .order_by("-created_at", "-id")
        )

    def _out(self, mitigation: Mitigation, code: int = status.HTTP_200_OK) -> Response:
        mitigation = self.get_queryset().get(pk=mitigation.pk)
        return Response(s.MitigationDetailSerializer(mitigation).data, status=code)

    @extend_schema(request=s.MitigationCreateSerializer, responses={201: s.MitigationDetailSerializer})
    def create(self, request):
        """Write a draft (compiled for each target at once); with ``propose`` also ask for approval."""
        data = s.MitigationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        customer = Customer.objects.visible_to(request.user).filter(slug=v["customer"]).first()
        if customer is None:
            raise ValidationError({"customer": ["no such customer"]})
        attack = Attack.objects.filter(pk=v["attack"]).first() if v["attack"] else None
        mitigation_list = None
        if v["mitigation_list"]:
            mitigation_list = MitigationList.objects.usable_by(customer).filter(name=v["mitigation_list"]).first()
            if mitigation_list is None:
                raise ValidationError({"mitigation_list": ["no such list for this customer"]})
        ticket = None
        if v["ticket"]:
            from tickets.models import Ticket

            ticket = Ticket.objects.filter(number=v["ticket"]).first()
            if ticket is None:
                raise ValidationError({"ticket": ["no such ticket"]})
        target = None
        if v["target"]:
            target = EnforcementTarget.objects.filter(name=v["target"]).first()
            if target is None:
                raise ValidationError({"target": ["no such enforcement target"]})
        also = list(EnforcementTarget.objects.filter(name__in=v["also_targets"]))
        if missing := sorted(set(v["also_targets"]) - {t.name for t in also}):
            raise ValidationError({"also_targets": [f"no such enforcement target: {', '.join(missing)}"]})
        if also and target is None:
            raise ValidationError({"also_targets": ["name the first target in target"]})
        with refusals():
            mitigation = services.mitigation_create(
                customer=customer,
                kind=v["kind"],
                user=request.user,
                target=target,
                also_targets=also,
                targets=v["targets"],
                expression=v["expression"],
                value=v["value"],
                mitigation_list=mitigation_list,
                action=v["action"],
                ttl_seconds=v.get("ttl_seconds"),
                rate=v["rate"],
                options=v["options"],
                attack=attack,
                ticket=ticket,
                title=v["title"],
            )
            if v["propose"]:
                services.mitigation_propose(mitigation=mitigation, user=request.user)
        return self._out(mitigation, status.HTTP_201_CREATED)

    @extend_schema(request=s.TrafficRowsSerializer, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"])
    def simulate(self, request, pk=None):
        """Run the rule over given records, or over the attack's traffic samples when none are given."""
        mitigation = self.get_object()
        data = s.TrafficRowsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attack = _rows_table(data.validated_data["attack"], "attack")
        baseline = _rows_table(data.validated_data["baseline"], "baseline")
        with refusals():
            try:
                services.mitigation_simulate(
                    mitigation=mitigation, user=request.user, attack_table=attack, baseline_table=baseline
                )
            except pa.ArrowException as exc:
                if attack is None and baseline is None:
                    raise  # the attack's own samples: not the client's doing
                # A field the rule reads sent as a type it cannot compare (an object for ip.src).
                raise ValidationError({"detail": ROWS_REFUSED}) from exc
        return self._out(mitigation)

    @extend_schema(request=None, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"])
    def propose(self, request, pk=None):
        """Ask for approval; refused while a target refuses the rule or the safety check fails."""
        mitigation = self.get_object()
        with refusals():
            services.mitigation_propose(mitigation=mitigation, user=request.user)
        return self._out(mitigation)

    @extend_schema(request=s.ApproveSerializer, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """A senior engineer's approval (not the author's); broad or costly rules need two."""
        mitigation = self.get_object()
        data = s.ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with refusals():
            services.mitigation_approve(
                mitigation=mitigation, user=request.user, comment=data.validated_data["comment"]
            )
        return self._out(mitigation)

    @extend_schema(request=None, responses={202: s.MitigationDetailSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Queue the installation on every target; follow ``state`` and ``progress``."""
        mitigation = self.get_object()
        with refusals():
            services.mitigation_apply(mitigation=mitigation, user=request.user)
        return self._out(mitigation, status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.ExtendSerializer, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        """Keep an active mitigation ``seconds`` longer."""
        mitigation = self.get_object()
        data = s.ExtendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with refusals():
            services.mitigation_extend(mitigation=mitigation, user=request.user, seconds=data.validated_data["seconds"])
        return self._out(mitigation)

    @extend_schema(request=s.RollbackSerializer, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Take it off every target now."""
        mitigation = self.get_object()
        data = s.RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with refusals():
            services.mitigation_rollback(mitigation=mitigation, user=request.user, reason=data.validated_data["reason"])
        return self._out(mitigation)

    @extend_schema(request=s.BulkApproveSerializer, responses=s.BulkApproveResultSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-approve")
    def bulk_approve(self, request):
        """Approve several at once: each goes through the same gate, one answer per mitigation."""
        data = s.BulkApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not roles.can_approve(request.user):
            # A role that may approve none of them is refused as a whole (403), not item by item (200).
            raise errors.RoleRefused("only a senior engineer or an admin may approve")
        found = {m.pk: m for m in self.get_queryset().filter(pk__in=data.validated_data["ids"])}
        results = []
        for pk in data.validated_data["ids"]:
            mitigation = found.get(pk)
            if mitigation is None:
                results.append({"id": pk, "state": None, "error": "no such mitigation"})
                continue
            try:
                services.mitigation_approve(
                    mitigation=mitigation, user=request.user, comment=data.validated_data["comment"]
                )
            except services.MitigationError as exc:
                results.append({"id": pk, "state": mitigation.state, "error": str(exc)})
            else:
                results.append({"id": pk, "state": mitigation.state, "error": ""})
        return Response({"results": results})

    @extend_schema(request=s.OverrideSafetySerializer, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"], url_path="override-safety")
    def override_safety(self, request, pk=None):
        """An admin lets it through the safety check, with a reason (audited)."""
        mitigation = self.get_object()
        data = s.OverrideSafetySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with refusals():
            services.mitigation_override_safety(
                mitigation=mitigation, user=request.user, reason=data.validated_data["reason"]
            )
        return self._out(mitigation)

    @extend_schema(request=None, responses=s.MitigationDetailSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """Back to draft, dropping approvals given so far."""
        mitigation = self.get_object()
        with refusals():
            services.mitigation_withdraw(mitigation=mitigation, user=request.user)
        return self._out(mitigation)


class MitigationListViewSet(ActorMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.MitigationListSerializer
    filterset_class = MitigationListFilterSet

    def get_queryset(self):
        return (
            MitigationList.objects.visible_to(self.request.user)
            .select_related("customer")
            .annotate(item_count=Count("items"))
            .order_by("name")
        )

    @extend_schema(request=s.MitigationListCreateSerializer, responses={201: s.MitigationListSerializer})
    def create(self, request):
        data = s.MitigationListCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        customer = None
        if v["customer"]:
            customer = Customer.objects.visible_to(request.user).filter(slug=v["customer"]).first()
            if customer is None:
                raise ValidationError({"customer": ["no such customer"]})
        elif not roles.can_approve(request.user):
            raise ValidationError({"customer": ["only senior engineers create global lists"]})
        with refusals():
            mlist = services.list_create(
                name=v["name"],
                purpose=v["purpose"],
                user=request.user,
                customer=customer,
                description=v["description"],
                source=v["source"],
            )
        return Response(
            s.MitigationListSerializer(self.get_queryset().get(pk=mlist.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=s.ListImportSerializer, responses=s.ListImportResultSerializer)
    @action(detail=True, methods=["post"], url_path="import")
    def import_items(self, request, pk=None):
        """Add the addresses of a plain, Spamhaus DROP or FireHOL file."""
        mlist = self.get_object()
        data = s.ListImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        with refusals():
            result = services.list_import(
                mitigation_list=mlist,
                text=v["text"],
                user=request.user,
                fmt=v["format"],
                ttl_seconds=v["ttl_seconds"],
                comment=v["comment"],
            )
        return Response(result)

    @extend_schema(responses=s.ListItemSerializer(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        """The list's items, paginated."""
        mlist = self.get_object()
        page = self.paginate_queryset(mlist.items.order_by("value"))
        return self.get_paginated_response(s.ListItemSerializer(page, many=True).data)


class GlobalAllowlistViewSet(ActorMixin, viewsets.ReadOnlyModelViewSet):
    """Addresses no mitigation may block (edit them in the admin)."""

    serializer_class = s.GlobalAllowlistEntrySerializer

    def get_queryset(self):
        if not roles.is_internal(self.request.user):
            return GlobalAllowlistEntry.objects.none()
        return GlobalAllowlistEntry.objects.order_by("value")

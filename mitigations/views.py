"""Pages: the ledger, a mitigation, the propose form, the approval page, lists."""

from __future__ import annotations

import contextlib
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from alerts.models import Attack
from console import errors, roles
from console.http import safe_next
from console.models import Customer
from console.permissions import get_visible_or_404
from console.views import paginate, require_internal
from mitigations import ledger, selectors, services
from mitigations.filters import MitigationFilterSet
from mitigations.forms import ListForm, ListImportForm, MitigationForm
from mitigations.models import Mitigation, MitigationList
from mitigations.rules import RuleError

EXPORTS = {
    "nftables": ("nft", "text/plain"),
    "iptables": ("rules", "text/plain"),
    "cloudflare": ("json", "application/json"),
}


def _require_actor(request: HttpRequest) -> None:
    if not roles.can_act(request.user):
        # An internal viewer sees the page but may not act: a role refusal, 403 (scope was checked first).
        raise PermissionDenied("only engineers may do this")


def _back(request: HttpRequest, default: str) -> HttpResponse:
    return redirect(safe_next(request, default))


@login_required
def mitigation_list(request: HttpRequest) -> HttpResponse:
    """The ledger: everything live across customers and targets; filters for the rest."""
    require_internal(request)
    params = request.GET.copy()
    if not params.get("state") and not params.get("q") and not params.get("all"):
        params.setlist("state", [Mitigation.State.ACTIVE, Mitigation.State.APPLYING, Mitigation.State.FAILED])
    filterset = MitigationFilterSet(params, queryset=selectors.ledger(request.user))
    page = paginate(request, filterset.qs, per_page=100)
    context = {"filter": filterset, "page": page, "customers": Customer.objects.order_by("name")}
    if request.htmx:
        return render(request, "mitigations/_ledger_rows.html", context)
    context.update(
        awaiting=selectors.awaiting_approval(request.user)[:50],
        strays=selectors.stray_rules(),
        backend_states=selectors.backend_states(),
        states=Mitigation.State.choices,
        kinds=Mitigation.Kind.choices,
        targets=["nftables", "iptables", "cloudflare", "export"],
    )
    return render(request, "mitigations/ledger.html", context)


@login_required
def mitigation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    mitigation = get_visible_or_404(selectors.ledger(request.user), request.user, pk=pk)
    return render(request, "mitigations/detail.html", _detail_context(request, mitigation))


def _detail_context(request: HttpRequest, mitigation: Mitigation) -> dict:
    user = request.user
    approved_by = {a.user_id for a in mitigation.approvals.all()}
    return {
        "m": mitigation,
        "events": mitigation.events.all(),
        "steps": mitigation.steps.all(),  # the enforcement ledger (mitigations/ledger.py)
        "enforcement": ledger.summary(mitigation),
        "configured_targets": mitigation.configured_targets(),
        "compiled": {t: _pretty(t, form) for t, form in (mitigation.compiled or {}).items()},
        "answers": json.dumps(mitigation.backend_answers or {}, indent=2, sort_keys=True),
        "can_approve_this": roles.can_approve(user)
        and mitigation.state == Mitigation.State.PROPOSED
        and user.pk != mitigation.author_id
        and user.pk not in approved_by
        and (mitigation.blast_radius != "high" or roles.is_admin(user)),
        "collateral": services.collateral(mitigation),
        "threshold": services.settings.MITIGATION_BLAST_RADIUS["low"],
        "needs": services.approvers_wanted(mitigation.blast_radius) if mitigation.blast_radius else "",
        "safety": services.safety_problems(mitigation) + services.unroutable_problems(mitigation)
        if mitigation.state in ("draft", "proposed")
        else [],
        "can_override": roles.is_admin(user),
    }


def _pretty(target: str, form: dict) -> list[tuple[str, str]]:
    """(label, text) pairs to show a compiled form as an engineer would read it."""
    if target == "nftables":
        return [("nft -f", form.get("ruleset", ""))]
    if target == "iptables":
        return [
            ("ipset restore", form.get("ipset", "")),
            ("iptables-restore --noflush", form.get("rules", "")),
            ("ip6tables-restore --noflush", form.get("rules6", "")),
        ]
    if target == "cloudflare":
        return [(f"{r['method']} {r['path']}", json.dumps(r["body"], indent=2)) for r in form.get("requests", [])]
    out = []
    for sub in ("nftables", "iptables", "cloudflare"):
        if sub in form:
            out += [(f"{sub}: {label}", text) for label, text in _pretty(sub, form[sub])]
    out += [(f"{sub}: refused", reason) for sub, reason in form.get("refused", {}).items()]
    return out


@login_required
def mitigation_new(request: HttpRequest) -> HttpResponse:
    """The propose form, prefilled from ?expression=&attack=&customer=&kind= (e.g. from a suggested signature)."""
    require_internal(request)
    _require_actor(request)
    attack = None
    attack_id = request.POST.get("attack") or request.GET.get("attack")
    if attack_id:
        attack = get_visible_or_404(Attack.objects.select_related("customer"), request.user, pk=attack_id)
    initial = {
        k: request.GET[k] for k in ("expression", "kind", "value", "action", "title", "ticket") if k in request.GET
    }
    if attack is not None:
        initial["attack"] = attack.pk
        initial.setdefault("title", f"{attack}")
        if "ticket" not in initial:
            # Whatever page the proposal starts from, it belongs to the attack's open ticket.
            from tickets.models import Ticket

            open_ticket = (
                attack.tickets.filter(status__in=Ticket.OPEN_STATES + (Ticket.Status.WAITING,))
                .order_by("-created_at")
                .first()
            )
            if open_ticket is not None:
                initial["ticket"] = open_ticket.number
        if attack.customer:
            initial["customer"] = attack.customer.slug
    if "customer" in request.GET:
        initial["customer"] = request.GET["customer"]
    customer = Customer.objects.filter(slug=initial.get("customer", "")).first()
    if request.method == "GET" and initial.get("expression") and customer is not None:
        # A suggestion names the attack's traffic only: prefill it limited to the customer,
        # minus the sources it must never block, so the engineer sees the scope it carries.
        with contextlib.suppress(RuleError):
            initial["expression"] = services.scoped_expression(customer, initial["expression"], attack=attack)
    form = MitigationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        ticket = None
        if d["ticket"]:
            from tickets.models import Ticket

            ticket = Ticket.objects.filter(number=d["ticket"].strip()).first()
            if ticket is None:
                form.add_error("ticket", "no such ticket")
        if ticket is not None or not d["ticket"]:
            try:
                mitigation = services.mitigation_create(
                    customer=d["customer"],
                    kind=d["kind"],
                    user=request.user,
                    target=d["enforcement_target"],
                    expression=d["expression"],
                    value=d["value"],
                    mitigation_list=d["mitigation_list"],
                    action=d["action"],
                    ttl_seconds=d["ttl_minutes"] * 60,
                    rate=form.rate(),
                    options=form.options(),
                    attack=attack,
                    ticket=ticket,
                    title=d["title"],
                )
            except RuleError as exc:
                form.add_error("expression", f"{exc} — {d['expression'][: exc.position]}⟦here⟧")
            except services.MitigationError as exc:
                form.add_error(None, str(exc))
            else:
                try:
                    services.mitigation_simulate(mitigation=mitigation, user=request.user)
                except services.MitigationError:
                    messages.info(
                        request, "Not simulated: no attack or baseline traffic samples for this customer yet."
                    )
                if request.POST.get("then") == "propose":
                    # "Save and propose": the same gate as the detail page's button, one click fewer.
                    try:
                        services.mitigation_propose(mitigation=mitigation, user=request.user)
                    except services.MitigationError as exc:
                        if isinstance(exc, errors.RoleRefused):
                            raise
                        messages.error(request, f"{mitigation.name} saved as a draft, not proposed: {exc}")
                    else:
                        messages.success(
                            request,
                            f"{mitigation.name} proposed: blast radius {mitigation.blast_radius}, "
                            f"it needs {services.approvers_wanted(mitigation.blast_radius)}; they are notified.",
                        )
                return redirect(mitigation)
    return render(request, "mitigations/form.html", {"form": form, "attack": attack})


@login_required
def mitigation_approval(request: HttpRequest, pk: int) -> HttpResponse:
    """What an approver needs on one page: the rule, its simulation, its compiled forms, the gate."""
    if request.method == "POST":
        response = mitigation_action(request, pk, "approve")
        if request.POST.get("then") == "apply":
            # "Approve and apply": the approval that completes the gate, then the same apply as the button.
            state = Mitigation.objects.filter(pk=pk).values_list("state", flat=True).first()
            if state == Mitigation.State.APPROVED:
                mitigation_action(request, pk, "apply")
                # Back to this page: its state, and "Tell the customer" once it is active.
                return redirect("mitigation-approval", pk=pk)
        return response
    require_internal(request)
    mitigation = get_visible_or_404(selectors.ledger(request.user), request.user, pk=pk)
    context = _detail_context(request, mitigation)
    # This approval is the last one the gate asks for: offer to apply in the same click.
    context["completes_gate"] = (
        context["can_approve_this"] and len(mitigation.approvals.all()) + 1 >= mitigation.required_approvals
    )
    return render(request, "mitigations/approve.html", context)


VERBS = ("simulate", "propose", "approve", "apply", "extend", "rollback", "withdraw", "override_safety")


@login_required
@require_POST
def mitigation_action(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    if verb not in VERBS:
        raise Http404("No such action")
    mitigation = get_visible_or_404(Mitigation.objects.select_related("customer"), request.user, pk=pk)
    user = request.user
    try:
        if verb == "simulate":
            services.mitigation_simulate(mitigation=mitigation, user=user)
        elif verb == "propose":
            services.mitigation_propose(mitigation=mitigation, user=user)
            messages.success(
                request,
                f"{mitigation.name} proposed: blast radius {mitigation.blast_radius}, "
                f"it needs {services.approvers_wanted(mitigation.blast_radius)}; they are notified.",
            )
        elif verb == "approve":
            services.mitigation_approve(mitigation=mitigation, user=user, comment=request.POST.get("comment", ""))
            messages.success(request, f"{mitigation.name}: your approval is recorded.")
        elif verb == "apply":
            services.mitigation_apply(mitigation=mitigation, user=user)
            messages.success(request, f"{mitigation.name} is being applied.")
        elif verb == "extend":
            services.mitigation_extend(mitigation=mitigation, user=user, seconds=int(request.POST.get("seconds", 3600)))
            messages.success(request, f"{mitigation.name} extended.")
        elif verb == "rollback":
            services.mitigation_rollback(mitigation=mitigation, user=user, reason=request.POST.get("reason", ""))
            messages.success(request, f"{mitigation.name} rolled back.")
        elif verb == "withdraw":
            services.mitigation_withdraw(mitigation=mitigation, user=user)
        elif verb == "override_safety":
            services.mitigation_override_safety(mitigation=mitigation, user=user, reason=request.POST.get("reason", ""))
            messages.success(request, f"{mitigation.name}: safety check overridden (audited).")
    except (services.MitigationError, ValueError) as exc:
        if isinstance(exc, errors.RoleRefused):
            raise  # 403: the role may not; a state conflict stays a message on the page it came from
        messages.error(request, f"{mitigation.name}: {exc}")
    return _back(request, mitigation.get_absolute_url())


@login_required
def mitigation_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """Download one compiled form (from the export target, or any target's compiled form)."""
    require_internal(request)
    mitigation = get_visible_or_404(Mitigation.objects.all(), request.user, pk=pk)
    if fmt not in EXPORTS:
        raise Http404("No such format")
    compiled = mitigation.compiled or {}
    form = compiled.get(fmt) or compiled.get("export", {}).get(fmt)
    if not form:
        raise Http404(f"{mitigation.name} has no {fmt} form")
    if fmt == "nftables":
        text = form["ruleset"]
    elif fmt == "iptables":
        text = (
            "# ipset restore\n"
            + form["ipset"]
            + "\n# iptables-restore --noflush\n"
            + form["rules"]
            + "\n# ip6tables-restore --noflush\n"
            + form["rules6"]
        )
    else:
        text = json.dumps(form["requests"], indent=2)
    extension, content_type = EXPORTS[fmt]
    response = HttpResponse(text, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{mitigation.name}.{extension}"'
    return response


# --------------------------------------------------------------------------- lists


@login_required
def list_index(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    form = ListForm(request.POST or None)
    if request.method == "POST":
        _require_actor(request)
        if form.is_valid():
            d = form.cleaned_data
            try:
                mlist = services.list_create(
                    name=d["name"],
                    purpose=d["purpose"],
                    user=request.user,
                    customer=d["customer"],
                    description=d["description"],
                )
            except services.MitigationError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(mlist)
    lists = (
        MitigationList.objects.visible_to(request.user).select_related("customer").annotate(item_count=Count("items"))
    )
    from mitigations.models import GlobalAllowlistEntry

    return render(
        request,
        "mitigations/lists.html",
        {
            "lists": lists,
            "form": form,
            "allowlist": GlobalAllowlistEntry.objects.all(),
        },
    )


@login_required
def list_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    mlist = get_visible_or_404(MitigationList.objects.select_related("customer"), request.user, pk=pk)
    form = ListImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        _require_actor(request)
        if form.is_valid():
            d = form.cleaned_data
            result = services.list_import(
                mitigation_list=mlist,
                text=d["text"],
                user=request.user,
                fmt=d["format"],
                ttl_seconds=(d["ttl_minutes"] or 0) * 60 or None,
                comment=d["comment"],
            )
            messages.success(
                request,
                f"Imported ({result['format']}): {result['added']} added, "
                f"{result['updated']} updated, {len(result['refused'])} refused, "
                f"{len(result['errors'])} unreadable lines.",
            )
            for problem in (result["refused"] + result["errors"])[:10]:
                messages.error(request, problem)
            return redirect(mlist)
    items = paginate(request, mlist.items.order_by("value"), per_page=200)
    states = selectors.list_item_states(mlist)
    return render(
        request,
        "mitigations/list_detail.html",
        {
            "list": mlist,
            "items": items,
            "form": form,
            "used_by": mlist.mitigations.all()[:20],
            "rows": [(item, states.get(item.value, [])) for item in items],
        },
    )


@login_required
@require_POST
def list_item_remove(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    mlist = get_visible_or_404(MitigationList.objects.all(), request.user, pk=pk)
    item = mlist.items.filter(pk=item_pk).first()
    if item is None:
        raise Http404("No such item")
    services.list_item_remove(item=item, user=request.user)
    return redirect(reverse("mitigation-list-detail", args=[mlist.pk]))

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console import roles
from console.http import safe_next
from console.permissions import get_visible_or_404
from console.views import paginate, require_internal
from mitigations.rules import RuleError
from traffic import charts, services
from traffic.forms import SampleUploadForm, SimulateForm
from traffic.models import TrafficSample


@login_required
def sample_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    samples = TrafficSample.objects.visible_to(request.user).select_related("customer", "attack")
    customer = request.GET.get("customer")
    if customer:
        samples = samples.filter(customer__slug=customer)
    form = SampleUploadForm(initial={"customer": customer}) if roles.can_act(request.user) else None
    return render(request, "traffic/sample_list.html", {"page": paginate(request, samples), "form": form})


@login_required
@require_POST
def sample_upload(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    if not roles.can_act(request.user):
        return redirect("traffic-list")
    form = SampleUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        samples = TrafficSample.objects.visible_to(request.user).select_related("customer", "attack")
        return render(
            request, "traffic/sample_list.html", {"page": paginate(request, samples), "form": form}, status=400
        )
    uploaded = form.cleaned_data["file"]
    sample = services.sample_create(
        customer=form.cleaned_data["customer"],
        name=uploaded.name,
        fileobj=uploaded,
        label=form.cleaned_data["label"],
        kind=form.cleaned_data["kind"],
        attack=form.cleaned_data["attack"],
        user=request.user,
    )
    messages.success(request, f"{sample.name} uploaded; parsing.")
    # Back to the attack page the upload came from, if it is on this site.
    return redirect(safe_next(request, sample.get_absolute_url()))


@login_required
def sample_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    sample = get_visible_or_404(TrafficSample.objects.select_related("customer", "attack"), request.user, pk=pk)
    if request.htmx and request.GET.get("progress"):
        return render(request, "traffic/_progress.html", {"sample": sample})
    figures = {}
    if sample.status == TrafficSample.Status.READY:
        figures = charts.pcap_charts(sample.summary) if sample.is_packets else charts.log_charts(sample.summary)
    baselines = TrafficSample.objects.filter(
        customer=sample.customer, status="ready", label=TrafficSample.Label.BASELINE, kind=sample.kind
    ).exclude(pk=sample.pk)
    if not sample.is_packets:
        baselines = (
            TrafficSample.objects.filter(customer=sample.customer, status="ready", label="baseline")
            .exclude(kind="pcap")
            .exclude(pk=sample.pk)
        )
    conversations = ((sample.summary or {}).get("statistics") or {}).get("conversations") or {}
    tables = [(label, key, conversations[key]) for label, key in CONVERSATION_TABLES if key in conversations]
    return render(
        request,
        "traffic/sample_detail.html",
        {
            "sample": sample,
            "charts": figures,
            "baselines": baselines,
            "summary": sample.summary,
            "conversation_tables": tables,
        },
    )


CONVERSATION_TABLES = [("IPv4", "ipv4"), ("IPv6", "ipv6"), ("TCP", "tcp"), ("UDP", "udp")]


@login_required
@require_GET
def sample_compare(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    attack = get_visible_or_404(TrafficSample.objects.select_related("customer"), request.user, pk=pk)
    baseline = None
    if request.GET.get("baseline"):  # else the automatic baseline (services.sample_baseline)
        baseline = get_visible_or_404(TrafficSample.objects.all(), request.user, pk=request.GET["baseline"])
    try:
        comparison = services.samples_compare(attack=attack, baseline=baseline)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect(attack.get_absolute_url())
    return render(
        request,
        "traffic/compare.html",
        {
            "attack": attack,
            "baseline": baseline,
            "comparison": comparison,
            "chart": charts.comparison_chart(comparison),
            # Proposing is an engineer's; the ticket a comparison was opened from goes with the proposal.
            "propose_url": reverse("mitigation-new") if roles.can_act(request.user) else "",
            "ticket": request.GET.get("ticket", "")[:20],
        },
    )


@login_required
def attack_suggestions(request: HttpRequest, attack_id: int) -> HttpResponse:
    """The attack page's card: candidate signatures from its samples against the customer's baseline."""
    require_internal(request)
    from alerts.models import Attack

    attack = get_visible_or_404(Attack.objects.all(), request.user, pk=attack_id)
    suggestions = []
    for sample in services.attack_samples(attack=attack):
        try:
            comparison = services.samples_compare(attack=sample)
        except ValueError:
            continue
        suggestions.append(
            {
                "sample": sample,
                "baseline": comparison["baseline"],
                "signatures": comparison["signatures"][:3],
                "victim": (sample.summary or {}).get("victim"),
                "sources": ((sample.summary or {}).get("direction") or {}).get("top_sources", [])[:5],
                "geo": ((sample.summary or {}).get("direction") or {}).get("source_geo"),
            }
        )
    return render(
        request,
        "traffic/_attack_suggestions.html",
        {
            "attack": attack,
            "suggestions": suggestions,
            "samples": attack.traffic_samples.all(),
            "propose_url": reverse("mitigation-new"),
            # On a ticket's page the card proposes for that ticket and the ticket has its own upload form.
            "ticket": request.GET.get("ticket", ""),
        },
    )


@login_required
def simulate(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    form = SimulateForm(request.POST or request.GET or None)
    result = error = None
    if form.is_bound and form.is_valid():
        attack, baseline = form.cleaned_data["attack"], form.cleaned_data["baseline"]
        try:
            result = services.sample_simulate(
                expression=form.cleaned_data["expression"], attack=attack, baseline=baseline
            )
        except (RuleError, ValueError) as exc:
            error = str(exc)
    template = "traffic/_simulation.html" if request.htmx else "traffic/simulate.html"
    return render(request, template, {"form": form, "result": result, "error": error})

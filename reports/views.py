"""Report pages: list and generate, detail with progress, downloads, share links, and the public share view."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from alerts.models import Alert, Attack
from console import roles
from console.http import HtmxHttpRequest, client_address
from console.models import Customer
from console.permissions import get_visible_or_404
from console.selectors import dashboard_overview
from console.views import require_internal
from reports import dashboards, selectors, services
from reports.forms import ReportRequestForm, ShareForm
from reports.models import Report, ShareLink


def require_actor(request: HttpRequest) -> None:
    """Making reports and links is an engineer's job: 403 for other roles (look the report up first: scope is 404)."""
    if not roles.can_act(request.user):
        raise PermissionDenied("only engineers make and share reports")


def _report(request: HttpRequest, pk: int) -> Report:
    return get_visible_or_404(Report.objects.select_related("customer", "created_by"), request.user, pk=pk)


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    # The list never shows a report's body or figures: leave those (often hundreds of kB each) in the database.
    reports = Report.objects.visible_to(request.user).select_related("customer").defer("html", "figures")
    customer = request.GET.get("customer")
    if customer:
        reports = reports.filter(customer__slug=customer)
    page = Paginator(reports.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    form = ReportRequestForm(user=request.user, initial={"subject": "attack"}) if roles.can_act(request.user) else None
    return render(
        request,
        "reports/report_list.html",
        {"page": page, "form": form, "customers": Customer.objects.visible_to(request.user), "customer": customer},
    )


@login_required
def report_new(request: HttpRequest) -> HttpResponse:
    """GET ``?attack=<id>`` (or ``?ticket=<number>``): the form with that subject chosen; POST: queue the report."""
    require_actor(request)
    if request.method == "POST":
        form = ReportRequestForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if data["subject"] == "attack":
                    report = services.report_request(user=request.user, attack=data["attack"])
                elif data["subject"] == "ticket":
                    report = services.report_request(user=request.user, ticket=data["ticket_obj"])
                else:
                    report = services.report_request(
                        user=request.user, customer=data["customer"], start=data["start"], end=data["end"]
                    )
            except services.ReportError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(report)
        status = 400
    else:
        initial: dict = {"subject": "attack"}
        if request.GET.get("attack", "").isdigit():
            initial["attack"] = int(request.GET["attack"])
        if request.GET.get("ticket"):
            initial.update(subject="ticket", ticket=request.GET["ticket"][:20])
        if request.GET.get("customer"):
            initial.update(subject="period", customer=request.GET["customer"])
        form = ReportRequestForm(user=request.user, initial=initial)
        status = 200
    return render(request, "reports/report_new.html", {"form": form}, status=status)


@login_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)
    context = {
        "report": report,
        "body": mark_safe(report.html),
        "share_form": ShareForm(),
    }  # rendered escaped by our template
    if roles.can_act(request.user):
        context["share_links"] = list(report.share_links.select_related("created_by").order_by("-created_at")[:20])
    return render(request, "reports/report_detail.html", context)


@never_cache
@login_required
def report_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar the detail page polls; once the report is done the page reloads itself."""
    report = _report(request, pk)
    response = render(request, "reports/_progress.html", {"report": report})
    if not report.is_pending:
        response["HX-Refresh"] = "true"
    return response


def _file(report: Report, kind: str) -> HttpResponseBase:
    if not report.is_ready:
        raise Http404("This report is not ready")
    if kind == "pdf":
        if not report.pdf:
            raise Http404("This report has no PDF")
        try:
            handle = report.pdf.open("rb")
        except FileNotFoundError as exc:
            # The row names a file the storage no longer holds (restored database, pruned media).
            raise Http404("This report's PDF file is missing") from exc
        return FileResponse(handle, as_attachment=True, filename=report.filename("pdf"), content_type="application/pdf")
    if kind == "csv":
        response = HttpResponse(services.figures_csv(report.figures, report), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(services.figures_json(report.figures), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{report.filename(kind)}"'
    return response


@login_required
@require_GET
def report_download(request: HttpRequest, pk: int, kind: str) -> HttpResponseBase:
    return _file(_report(request, pk), kind)


@login_required
@require_POST
def report_share(request: HttpRequest, pk: int) -> HttpResponse:
    report = _report(request, pk)  # scope first: another customer's report is a 404
    require_actor(request)
    if not report.is_ready:
        messages.error(request, "A report can be shared once it is ready.")
        return redirect(report)
    form = ShareForm(request.POST)
    days = form.cleaned_data["days"] if form.is_valid() else None
    link, token = services.share_link_create(report=report, user=request.user, days=days)
    # The token is shown once, on this response; only its hash is kept.
    share_url = request.build_absolute_uri(f"/share/{token}/")
    context = {
        "report": report,
        "body": mark_safe(report.html),
        "share_form": ShareForm(),
        "share_links": list(report.share_links.select_related("created_by").order_by("-created_at")[:20]),
        "new_share_url": share_url,
        "new_share_link": link,
    }
    return render(request, "reports/report_detail.html", context)


@login_required
@require_POST
def report_share_revoke(request: HttpRequest, pk: int, link_id: int) -> HttpResponse:
    report = _report(request, pk)
    require_actor(request)
    link = ShareLink.objects.filter(report=report, pk=link_id).first()
    if link is None:
        raise Http404("No such link")
    services.share_link_revoke(link=link, user=request.user)
    messages.success(request, f"Share link …{link.hint} revoked.")
    return redirect(report)


@login_required
@require_POST
def report_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the report again, exactly as it was generated, to the customer's report contacts."""
    report = _report(request, pk)
    require_actor(request)
    sent = services.report_send(report=report, user=request.user)
    if sent:
        messages.success(request, f"Report sent to {', '.join(sent)}.")
    else:
        messages.error(request, "Not sent: the report is not ready or the customer has no report contacts.")
    return redirect(report)


def _client_ip(request: HttpRequest) -> str | None:
    # Behind the TLS proxy, the viewer of a share link rather than the proxy.
    return client_address(request) or None


@never_cache
@require_GET
def share_view(request: HttpRequest, token: str) -> HttpResponse:
    """A shared report, read-only, without login: that one report and nothing else."""
    link = services.share_link_open(
        token=token, ip=_client_ip(request), user_agent=request.headers.get("User-Agent", ""), what="html"
    )
    if link is None:
        raise Http404("This link is unknown, expired or revoked")
    report = link.report
    response = render(
        request,
        "reports/share.html",
        {"report": report, "body": mark_safe(report.html), "link": link, "token": token},
    )
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_GET
def share_download(request: HttpRequest, token: str, kind: str) -> HttpResponseBase:
    link = services.share_link_open(
        token=token, ip=_client_ip(request), user_agent=request.headers.get("User-Agent", ""), what=kind
    )
    if link is None:
        raise Http404("This link is unknown, expired or revoked")
    return _file(link.report, kind)


# --------------------------------------------------------------------------- dashboards


@login_required
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """The SOC overview; its cards refresh themselves every 30 s (htmx polls ``?fragment=1``)."""
    if not roles.is_internal(request.user):
        customer_id = roles.bound_customer_id(request.user)
        if customer_id is None:
            return render(request, "console/no_access.html", status=200)
        customer = get_visible_or_404(Customer.objects.all(), request.user, pk=customer_id)
        return render(
            request, "reports/customer_dashboard.html", dashboards.customer_overview(customer, internal=False)
        )
    context = {
        **dashboard_overview(),
        **dashboards.soc_overview(),
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
    }
    if request.GET.get("fragment") and request.htmx:
        return render(request, "reports/_soc_overview.html", context)
    return render(request, "console/dashboard.html", context)


@login_required
def customer_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """One customer's attacks over time, vectors, largest peaks, tickets, mitigations and assets."""
    # A customer viewer sees their own customer's (scope makes any other a 404), without the staff's parts.
    customer = get_visible_or_404(Customer.objects.all(), request.user, slug=slug)
    internal = roles.is_internal(request.user)
    if not internal and roles.bound_customer_id(request.user) != customer.pk:
        raise Http404("No such page")
    overview = dashboards.customer_overview(customer, internal=internal)
    return render(request, "reports/customer_dashboard.html", overview)


@login_required
@require_GET
def attack_places(request: HttpRequest, pk: int) -> HttpResponse:
    """The attack page's source countries and ASNs: the report's own figures, so the two agree."""
    require_internal(request)
    attack = get_visible_or_404(Attack.objects.select_related("customer"), request.user, pk=pk)
    context = {"attack": attack, "sources": selectors.attack_sources(attack)}
    return render(request, "reports/_attack_places.html", context)


@login_required
@require_GET
def alert_places(request: HttpRequest, pk: int) -> HttpResponse:
    """One alert's source countries and ASNs: the sender's, else offline geolocation (said so)."""
    require_internal(request)
    alert = get_visible_or_404(Alert.objects.select_related("customer"), request.user, pk=pk)
    return render(request, "reports/_alert_places.html", {"places": selectors.alert_sources(alert)})

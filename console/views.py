from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from console import roles
from console.filters import AuditEventFilterSet, CustomerFilterSet
from console.health import health
from console.models import ApiToken, AuditEvent, Customer
from console.permissions import get_visible_or_404
from console.services import api_token_create
from console.services import api_token_revoke as revoke_token


def require_internal(request: HttpRequest) -> None:
    """Pages of the provider's own staff: a customer viewer or outsider gets a 404."""
    if not roles.is_internal(request.user):
        raise Http404("No such page")


def htmx_partial(request: HttpRequest) -> bool:
    """An htmx swap of the rows; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def paginate(request: HttpRequest, queryset, per_page: int = 50):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    filterset = CustomerFilterSet(request.GET, queryset=Customer.objects.visible_to(request.user))
    page = paginate(request, filterset.qs.prefetch_related("assets"))
    template = "console/_customer_rows.html" if htmx_partial(request) else "console/customer_list.html"
    return render(request, template, {"filter": filterset, "page": page})


@login_required
def customer_detail(request: HttpRequest, slug: str) -> HttpResponse:
    require_internal(request)
    customer = get_visible_or_404(Customer.objects.all(), request.user, slug=slug)
    return render(
        request,
        "console/customer_detail.html",
        {
            "customer": customer,
            "assets": customer.assets.all(),
            "audit": AuditEvent.objects.filter(customer=customer)[:20],
        },
    )


@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    filterset = AuditEventFilterSet(request.GET, queryset=AuditEvent.objects.visible_to(request.user))
    page = paginate(request, filterset.qs.select_related("customer"))
    template = "console/_audit_rows.html" if htmx_partial(request) else "console/audit_list.html"
    return render(request, template, {"filter": filterset, "page": page})


@never_cache
@login_required
def api_token_list(request: HttpRequest) -> HttpResponse:
    """One's own API keys: create one (its key is shown on this response only) and revoke any."""
    issued = None
    if request.method == "POST":
        days = request.POST.get("expires_days", "").strip()
        expires_at = timezone.now() + timedelta(days=int(days)) if days.isdigit() and int(days) > 0 else None
        issued = api_token_create(user=request.user, name=request.POST.get("name", "").strip(), expires_at=expires_at)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "console/api_tokens.html", {"tokens": tokens, "issued": issued, "now": timezone.now()})


@require_POST
@login_required
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    revoke_token(token=token)
    return redirect("api-token-list")

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from alerts import charts, feeds, services
from alerts.filters import AlertFilterSet, AttackFilterSet
from alerts.forms import FeedEditForm, FeedForm, SilenceForm
from alerts.health import ingest_status
from alerts.imports import import_enqueue
from alerts.models import Alert, AlertImport, Attack, Delivery, Feed, SavedView, Silence
from alerts.selectors import QUEUE_ORDER, selected_alerts
from console import roles
from console.audit import audit_record
from console.http import safe_next
from console.permissions import get_visible_or_404
from console.views import htmx_partial, paginate, require_internal

QUEUE_SIZE = 200
# What a queue row shows (alerts/templatetags/queue.py): the raw payload and the source lists stay in the
# database, so a page of 200 rows neither ships nor decodes them.
QUEUE_COLUMNS = (
    "id",
    "attack_id",
    "urgency",
    "urgency_reasons",
    "severity",
    "title",
    "layer",
    "target_ip",
    "target_port",
    "target_host",
    "zone",
    "vector",
    "bps",
    "pps",
    "rps",
    "count",
    "last_seen",
    "status",
    "feed__slug",
    "customer__name",
    "assignee__username",
)
INGEST_HEADERS = (
    "content-type",
    "user-agent",
    "x-request-id",
    "x-shieldwall-timestamp",
    "x-shieldwall-delivery",
    "x-forwarded-for",
    "cf-ray",
)


def _require_actor(request: HttpRequest) -> None:
    if not roles.can_act(request.user):
        # An internal viewer sees the page but may not act: a role refusal, 403 (scope was checked first).
        raise PermissionDenied("only engineers may do this")


# --------------------------------------------------------------------------- ingest


@csrf_exempt
def ingest(request: HttpRequest, slug: str) -> JsonResponse:
    """The webhook: store the raw delivery, answer 202 at once; parsing happens in Celery."""
    if request.method != "POST":
        # Any other method is a wrong method (405, with Allow), never a 2xx: nothing is stored.
        response = JsonResponse({"error": "POST a delivery to this URL"}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        feed = Feed.objects.filter(slug=slug, enabled=True, mode=Feed.Mode.PUSH).first()
    except DatabaseError:
        return JsonResponse({"error": "cannot store deliveries right now; retry"}, status=503)
    if feed is None:
        return JsonResponse({"error": "no such feed"}, status=404)
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > feed.max_body_bytes:
        return JsonResponse({"error": f"body larger than {feed.max_body_bytes} bytes"}, status=413)
    body = request.read(feed.max_body_bytes + 1)
    if len(body) > feed.max_body_bytes:
        return JsonResponse({"error": f"body larger than {feed.max_body_bytes} bytes"}, status=413)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        nonce = services.feed_authenticate(feed=feed, headers=headers, body=body)
        services.feed_rate_check(feed)
        services.delivery_check_limits(body=body)
    except services.IngestRefused as refused:
        response = JsonResponse({"error": refused.message}, status=refused.status)
        if refused.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="shieldwall-ingest"'
        if refused.status == 429:
            response["Retry-After"] = "60"
        return response
    kept = {k: v[:500] for k, v in headers.items() if k in INGEST_HEADERS}
    kept["remote-addr"] = request.META.get("REMOTE_ADDR", "")
    try:
        received = services.delivery_receive(feed=feed, body=body, headers=kept, nonce=nonce)
    except services.IngestRefused as refused:  # a replayed signed delivery: 409, nothing stored
        return JsonResponse({"error": refused.message}, status=refused.status)
    except DatabaseError:
        # Never 2xx for something not stored: the sender keeps it and retries.
        return JsonResponse({"error": "cannot store deliveries right now; retry"}, status=503)
    delivery = received.delivery
    if delivery.status == Delivery.Status.REJECTED and received.created:
        return JsonResponse({"delivery": delivery.pk, "status": "rejected", "error": delivery.error}, status=400)
    answer = {"delivery": delivery.pk, "status": delivery.status, "duplicate": not received.created}
    if received.refused:
        # Alertmanager does not retry a 4xx: the good alerts are kept, the broken ones named.
        answer["refused"] = received.refused
    return JsonResponse(answer, status=202)


# --------------------------------------------------------------------------- triage queue


def _queue_queryset(request: HttpRequest):
    params = request.GET.copy()
    if not any(k in params for k in ("status", "queue")):
        params["queue"] = "true"
    filterset = AlertFilterSet(params, queryset=Alert.objects.visible_to(request.user))
    return filterset, filterset.qs.select_related("customer", "feed", "assignee").only(*QUEUE_COLUMNS).order_by(
        *QUEUE_ORDER
    )


def _grouped(alerts: list[Alert]) -> list[Alert]:
    """Alerts of one attack under its most urgent one: the lead carries ``members`` (shown on expand)."""
    leads: dict[int, Alert] = {}
    out: list[Alert] = []
    for alert in alerts:
        alert.members = []
        lead = leads.get(alert.attack_id) if alert.attack_id else None
        if lead is None:
            if alert.attack_id:
                leads[alert.attack_id] = alert
            out.append(alert)
        else:
            alert.member_of = lead.pk
            lead.members.append(alert)
    return out


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    filterset, alerts = _queue_queryset(request)
    if request.htmx and request.GET.get("after"):
        # Live updates: alerts new or changed since the page's last poll.
        after = parse_datetime(request.GET["after"]) or timezone.now()
        changed = list(alerts.filter(updated_at__gt=after)[:100])
        return render(
            request,
            "alerts/_queue_rows.html",
            {"alerts": changed, "fresh": True, "cursor": timezone.now().isoformat(), "polling": True},
        )
    # Also the alerts that left the queue since the cursor arrive as "gone" rows (see the poll above);
    # the page itself is paginated so nothing past the first 200 is out of reach.
    page = Paginator(alerts, QUEUE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filter": filterset,
        "alerts": _grouped(list(page.object_list)),
        "page": page,
        "page_query": query.urlencode(),
        "poll_ms": settings.QUEUE_POLL_MS,
        "total": page.paginator.count,
        "cursor": timezone.now().isoformat(),
        "query": request.GET.urlencode(),
        "saved_views": SavedView.objects.filter(owner=request.user) | SavedView.objects.filter(shared=True),
        "users": get_user_model().objects.filter(groups__name__in=roles.ACTING_ROLES).distinct().order_by("username"),
        "outcomes": Alert.Outcome.choices,
        "escalation_enabled": _escalation_url() is not None,
    }
    return render(request, "alerts/queue.html", context)


def _escalation_url() -> str | None:
    try:
        return reverse("ticket-escalate")
    except Exception:  # the tickets app is not installed yet
        return None


@login_required
@require_POST
def alert_bulk(request: HttpRequest) -> HttpResponse:
    """Bulk triage from the queue: acknowledge, assign, resolve with an outcome."""
    require_internal(request)
    _require_actor(request)
    alerts = selected_alerts(user=request.user, data=request.POST)
    action = request.POST.get("action", "")
    if not alerts:
        messages.error(request, "Select at least one alert.")
    elif action == "acknowledge":
        done = services.alerts_acknowledge(alerts=alerts, user=request.user)
        messages.success(request, f"Acknowledged {done} alert(s).")
    elif action == "assign":
        assignee = get_user_model().objects.filter(username=request.POST.get("assignee", "")).first()
        done = services.alerts_assign(alerts=alerts, assignee=assignee, user=request.user)
        messages.success(request, f"Assigned {done} alert(s) to {assignee or 'nobody'}.")
    elif action == "resolve":
        try:
            done = services.alerts_resolve(alerts=alerts, outcome=request.POST.get("outcome", ""), user=request.user)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Resolved {done} alert(s).")
    elif action == "silence":
        return redirect(f"{reverse('silence-new')}?alerts={','.join(str(a.pk) for a in alerts)}")
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return redirect(safe_next(request, reverse("alert-list")))


@login_required
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    name = request.POST.get("name", "").strip()[:80]
    if name:
        SavedView.objects.create(owner=request.user, name=name, query=request.POST.get("query", "")[:1000])
        messages.success(request, f"Saved view “{name}”.")
    return redirect(f"{reverse('alert-list')}?{request.POST.get('query', '')}")


def _alert_for_page(request: HttpRequest, pk: int) -> tuple[Alert, str]:
    """The alert with what its page and the queue's pane show, and its raw payload as JSON text."""
    require_internal(request)
    alert = get_visible_or_404(
        Alert.objects.select_related("customer", "feed", "attack", "asset", "assignee", "delivery", "silence"),
        request.user,
        pk=pk,
    )
    return alert, json.dumps(alert.raw, indent=2, ensure_ascii=False, default=str)


@login_required
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert, raw = _alert_for_page(request, pk)
    related = Alert.objects.none()
    if alert.attack_id:
        related = Alert.objects.filter(attack_id=alert.attack_id).exclude(pk=alert.pk).select_related("feed")[:50]
    context = {
        "alert": alert,
        "raw": raw,
        "related": related,
        "outcomes": Alert.Outcome.choices,
    }
    return render(request, "alerts/alert_detail.html", context)


@login_required
def alert_pane(request: HttpRequest, pk: int) -> HttpResponse:
    """The queue's detail pane (an htmx fragment): the alert under the cursor, without leaving the queue."""
    alert, raw = _alert_for_page(request, pk)
    return render(request, "alerts/_alert_pane.html", {"alert": alert, "raw": raw})


# --------------------------------------------------------------------------- attacks


@login_required
def attack_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    filterset = AttackFilterSet(
        request.GET, queryset=Attack.objects.visible_to(request.user).select_related("customer")
    )
    page = paginate(request, filterset.qs)
    template = "alerts/_attack_rows.html" if htmx_partial(request) else "alerts/attack_list.html"
    return render(request, template, {"filter": filterset, "page": page})


@login_required
def attack_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    attack = get_visible_or_404(Attack.objects.select_related("customer"), request.user, pk=pk)
    alerts = list(attack.alerts.select_related("feed").order_by("event_time")[:500])
    open_ids = [a.pk for a in alerts if a.status in (Alert.Status.NEW, Alert.Status.ACKNOWLEDGED)]
    context = {
        "attack": attack,
        "alerts": alerts,
        "timeline": charts.attack_timeline(alerts),
        "open_alert_ids": open_ids if _escalation_url() else [],
    }
    return render(request, "alerts/attack_detail.html", context)


# --------------------------------------------------------------------------- feeds


@login_required
def feed_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    feeds = (
        Feed.objects.visible_to(request.user)
        .select_related("customer")
        .annotate(pending_count=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)))
    )
    return render(request, "alerts/feed_list.html", {"feeds": feeds, "ingest": ingest_status()["ingest"]})


@login_required
def feed_create(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    if not roles.is_admin(request.user) and not roles.can_approve(request.user):
        raise PermissionDenied("only a senior engineer or an admin may add feeds")
    form = FeedForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            feed, token = feeds.feed_create(values=form.cleaned_data, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return render(request, "alerts/feed_secret.html", {"feed": feed, "token": token, "created": True})
    return render(request, "alerts/feed_form.html", {"form": form})


def _require_feed_editor(request: HttpRequest) -> None:
    # The API's rule too (alerts/api/views.py): a feed decides what the console accepts.
    if not roles.can_approve(request.user):
        raise PermissionDenied("only a senior engineer or an admin may edit feeds")


@login_required
def feed_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit a feed's settings, with its last deliveries previewed under the settings not yet saved."""
    require_internal(request)
    _require_feed_editor(request)
    feed = get_visible_or_404(Feed.objects.select_related("customer"), request.user, slug=slug)
    form = FeedEditForm(request.POST or None, instance=feeds.feed_with(feed, {}))
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.Meta.fields if name in form.cleaned_data}
        try:
            feeds.feed_update(feed=feed, changes=changes, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Feed {feed.name} saved.")
            return redirect(feed.get_absolute_url())
    return render(request, "alerts/feed_edit.html", {"feed": feed, "form": form})


@login_required
@require_POST
def feed_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """htmx: the last deliveries parsed and mapped with the form's unsaved settings."""
    require_internal(request)
    _require_actor(request)
    feed = get_visible_or_404(Feed.objects.all(), request.user, slug=slug)
    form = FeedEditForm(request.POST, instance=feeds.feed_with(feed, {}))
    if not form.is_valid():
        return render(request, "alerts/_feed_preview.html", {"errors": form.errors})
    unsaved = {name: form.cleaned_data[name] for name in feeds.FEED_PARSING_FIELDS if name in form.cleaned_data}
    rows = feeds.feed_preview(feed=feed, unsaved=unsaved)
    return render(request, "alerts/_feed_preview.html", {"rows": rows, "feed": feed})


@login_required
@require_POST
def feed_replay(request: HttpRequest, slug: str) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    feed = get_visible_or_404(Feed.objects.all(), request.user, slug=slug)
    result = feeds.feed_replay(feed=feed, user=request.user)
    if result.deliveries:
        messages.success(
            request,
            f"Replaying {result.rejected} rejected and {result.unmapped} unmapped deliveries "
            f"({result.alerts_removed} alerts rebuilt).",
        )
    else:
        messages.info(request, "No rejected or unmapped deliveries to replay.")
    return redirect(feed.get_absolute_url())


@login_required
@require_POST
def feed_rotate(request: HttpRequest, slug: str) -> HttpResponse:
    require_internal(request)
    feed = get_visible_or_404(Feed.objects.all(), request.user, slug=slug)
    if not roles.can_approve(request.user):
        raise PermissionDenied("only a senior engineer or an admin may rotate a feed's token")
    token = feeds.feed_rotate_secret(feed=feed, user=request.user)
    return render(request, "alerts/feed_secret.html", {"feed": feed, "token": token, "created": False})


@login_required
def feed_detail(request: HttpRequest, slug: str) -> HttpResponse:
    require_internal(request)
    feed = get_visible_or_404(Feed.objects.select_related("customer"), request.user, slug=slug)
    deliveries = feed.deliveries.defer("body").order_by("-received_at")
    status = request.GET.get("status")
    if status in Delivery.Status.values:
        deliveries = deliveries.filter(status=status)
    context = {
        "feed": feed,
        "deliveries": deliveries[:50],
        "pending": feed.deliveries.pending().count(),
        "rejected": feed.deliveries.filter(status=Delivery.Status.REJECTED).count(),
        "imports": feed.imports.all()[:10],
        "ingest_url": request.build_absolute_uri(feed.ingest_path()),
        "status": status or "",
    }
    return render(request, "alerts/feed_detail.html", context)


@login_required
@require_POST
def feed_import(request: HttpRequest, slug: str) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    feed = get_visible_or_404(Feed.objects.all(), request.user, slug=slug)
    uploaded = request.FILES.get("file")
    if not uploaded:
        messages.error(request, "Choose a file to import.")
        return redirect(feed.get_absolute_url())
    job = import_enqueue(feed=feed, uploaded=uploaded, user=request.user)
    audit_record(action="feed.import", obj=feed, after={"file": job.filename, "size": job.size})
    messages.success(request, f"Importing {job.filename}.")
    return redirect(feed.get_absolute_url())


@login_required
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    job = AlertImport.objects.filter(pk=pk).first()
    if job is None:
        raise Http404("No such import")
    return render(request, "alerts/_import_progress.html", {"job": job})


@login_required
def delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    delivery = get_visible_or_404(Delivery.objects.select_related("feed"), request.user, pk=pk)
    return render(
        request,
        "alerts/delivery_detail.html",
        {
            "delivery": delivery,
            "body": delivery.body_text(),
            "alerts": delivery.alerts.all()[:100],
            "max_attempts": settings.INGEST_MAX_ATTEMPTS,
        },
    )


@login_required
@require_POST
def delivery_reprocess(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    delivery = get_visible_or_404(Delivery.objects.select_related("feed"), request.user, pk=pk)
    services.delivery_reprocess(delivery=delivery)
    messages.success(request, f"Delivery {delivery.pk} queued for processing again.")
    return redirect(safe_next(request, delivery.feed.get_absolute_url()))


# --------------------------------------------------------------------------- silences


@login_required
def silence_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    now = timezone.now()
    # How many alerts each silence took out of the queue, and how many notifications they carried.
    silences = (
        Silence.objects.visible_to(request.user)
        .select_related("created_by")
        .annotate(suppressed=Count("silenced_alerts"), notifications=Sum("silenced_alerts__count"))
    )
    return render(
        request,
        "alerts/silence_list.html",
        {"active": silences.active(now), "expired": silences.expired(now)[:50], "now": now},
    )


@login_required
def silence_new(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    if request.method == "POST":
        form = SilenceForm(request.POST)
        if form.is_valid():
            try:
                silence = services.silence_create(
                    matchers=form.cleaned_data["matchers"],
                    starts_at=timezone.now(),
                    ends_at=timezone.now() + timedelta(minutes=form.cleaned_data["duration_minutes"]),
                    comment=form.cleaned_data["comment"],
                    user=request.user,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Silence saved: {silence}.")
                return redirect("alert-list")
    else:
        ids = [int(i) for i in request.GET.get("alerts", "").split(",") if i.isdigit()]
        selected = list(Alert.objects.visible_to(request.user).filter(pk__in=ids).select_related("customer", "feed"))
        form = SilenceForm(initial={"matchers_json": json.dumps(services.silence_matchers_for(selected))})
    return render(request, "alerts/silence_form.html", {"form": form, "fields": Silence.FIELDS})


@login_required
@require_POST
def silence_preview(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    form = SilenceForm(request.POST)
    if not form.is_valid():
        return render(request, "alerts/_silence_preview.html", {"errors": form.errors})
    try:
        count, alerts = services.silence_preview(matchers=form.cleaned_data["matchers"])
    except ValueError as exc:
        return render(request, "alerts/_silence_preview.html", {"errors": {"matchers": [str(exc)]}})
    return render(request, "alerts/_silence_preview.html", {"count": count, "alerts": alerts})


@login_required
@require_POST
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    require_internal(request)
    _require_actor(request)
    silence = get_visible_or_404(Silence.objects.all(), request.user, pk=pk)
    services.silence_expire(silence=silence, user=request.user)
    messages.success(request, "Silence expired; its alerts are back in the queue.")
    return redirect("silence-list")

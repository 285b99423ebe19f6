"""Ticket pages: the list, the ticket with its timeline and composer, and escalation from the queue."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from alerts.selectors import selected_alerts
from console import roles
from console.http import safe_next
from console.permissions import get_visible_or_404
from console.views import paginate, require_internal
from tickets import mail, selectors, services
from tickets.filters import TicketFilterSet
from tickets.forms import InboundTicketForm, TicketForm
from tickets.messages import MessageTemplateError
from tickets.models import InboundMail, Ticket, TicketTemplate, TimelineEntry


def _require_actor(request: HttpRequest) -> None:
    require_internal(request)
    if not roles.can_act(request.user):
        # An internal viewer sees the page but may not act: a role refusal, 403 (scope was checked first).
        raise PermissionDenied("only engineers may do this")


def _ticket(request: HttpRequest, number: str) -> Ticket:
    return get_visible_or_404(Ticket.objects.select_related("customer", "assignee"), request.user, number=number)


def _acting_users():
    return get_user_model().objects.filter(groups__name__in=roles.ACTING_ROLES).distinct().order_by("username")


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    require_internal(request)
    params = request.GET.copy()
    if not params:
        params["open"] = "true"
    filterset = TicketFilterSet(params, queryset=selectors.ticket_list_queryset(request.user), request=request)
    page = paginate(request, filterset.qs)
    policies = selectors.sla_policies()
    rows = []
    for ticket in page:
        clocks = ticket.sla_clocks(services.sla_policy_for(ticket, policies))
        rows.append({"ticket": ticket, "clocks": clocks, "sla": Ticket.worst_state(clocks)})
    context = {"filter": filterset, "page": page, "rows": rows, "query": params.urlencode()}
    if not request.htmx:
        context["mail_without_ticket"] = selectors.inbound_mail_without_ticket(request.user).count()
    template = "tickets/_rows.html" if request.htmx else "tickets/list.html"
    return render(request, template, context)


@login_required
def inbound_mail_list(request: HttpRequest) -> HttpResponse:
    """Customer mail that reached no ticket, newest first, so that none is lost unseen."""
    require_internal(request)
    page = paginate(request, selectors.inbound_mail_without_ticket(request.user))
    return render(request, "tickets/inbound.html", {"page": page})


def _inbound(request: HttpRequest, pk: int) -> InboundMail:
    # Inbound mail has no customer to scope it by: staff only, like its list (404 for anyone else).
    require_internal(request)
    row = InboundMail.objects.select_related("ticket").filter(pk=pk).first()
    if row is None:
        raise Http404("No such mail")
    return row


def _inbound_page(request: HttpRequest, row: InboundMail, form: Any = None, status: int = 200) -> HttpResponse:
    q = request.GET.get("q", "")[:100]
    customers = selectors.inbound_mail_sender_customers(row)
    if form is None:
        form = InboundTicketForm(initial={"customer": customers[0].slug if customers else None, "title": row.subject})
    context = {
        "mail": row,
        "q": q,
        "customers": customers,
        "choices": selectors.inbound_mail_ticket_choices(row, request.user, q=q) if row.ticket_id is None else [],
        "form": form,
        "can_act": roles.can_act(request.user),
    }
    return render(request, "tickets/inbound_detail.html", context, status=status)


@login_required
@require_GET
def inbound_mail_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One mail that reached no ticket: attach it to the ticket it belongs to, or open one from it."""
    return _inbound_page(request, _inbound(request, pk))


@login_required
@require_POST
def inbound_mail_attach(request: HttpRequest, pk: int) -> HttpResponse:
    row = _inbound(request, pk)
    _require_actor(request)
    ticket = _ticket(request, request.POST.get("ticket", "").strip()[:20])
    try:
        services.inbound_mail_attach(mail=row, ticket=ticket, user=request.user)
    except services.TicketError as exc:
        messages.error(request, str(exc))
        return redirect("ticket-inbound-mail-detail", pk=row.pk)
    messages.success(request, f"The mail from {row.sender or 'unknown sender'} is now on {ticket.number}.")
    return redirect(ticket)


@login_required
@require_POST
def inbound_mail_open_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    row = _inbound(request, pk)
    _require_actor(request)
    form = InboundTicketForm(request.POST)
    if not form.is_valid():  # shown again with what was typed, and why it was refused
        return _inbound_page(request, row, form, status=400)
    try:
        ticket = services.inbound_mail_open_ticket(mail=row, user=request.user, **form.cleaned_data)
    except services.TicketError as exc:
        form.add_error(None, str(exc))
        return _inbound_page(request, row, form, status=409)
    messages.success(request, f"Opened {ticket.number} with the mail from {row.sender or 'unknown sender'}.")
    return redirect(ticket)


@login_required
def service_levels(request: HttpRequest) -> HttpResponse:
    """MTTA, MTTR and SLA compliance per customer and week."""
    require_internal(request)
    try:
        weeks = min(52, max(1, int(request.GET.get("weeks") or 8)))
    except ValueError:
        weeks = 8
    customer = request.GET.get("customer", "").strip()
    rows = selectors.service_levels(request.user, weeks=weeks, customer=customer)
    return render(request, "tickets/service_levels.html", {"rows": rows, "weeks": weeks, "customer": customer})


def _detail_context(request: HttpRequest, ticket: Ticket, **extra: Any) -> dict[str, Any]:
    templates = list(TicketTemplate.objects.all())
    composer = {"template": "", "subject": "", "body": ""}
    slug = request.GET.get("template", "")
    chosen = next((t for t in templates if t.slug == slug), None)
    if chosen is not None:
        try:
            composer["subject"], composer["body"] = services.ticket_preview_message(
                ticket=ticket, template=chosen, user=request.user
            )
            composer["template"] = chosen.slug
        except MessageTemplateError as exc:
            messages.error(request, str(exc))
    composer.update(extra.pop("composer", {}))
    return {
        "ticket": ticket,
        "alerts": ticket.alerts.select_related("feed").order_by("-urgency", "event_time")[:200],
        "alert_count": ticket.alerts.count(),
        "attacks": ticket.attacks.all(),
        "chart": selectors.ticket_attack_chart(ticket),
        "clocks": selectors.ticket_sla(ticket),
        "timeline": selectors.ticket_timeline(ticket, request.user),
        "templates": templates,
        "composer": composer,
        "targets": [Ticket.Status(s) for s in Ticket.Status.values if ticket.can_become(s)],
        "outcomes": [c for c in Ticket.Outcome.choices if c[0]],
        "levels": Ticket.EscalationLevel.choices,
        "users": _acting_users(),
        "channels": services.CONTACT_CHANNELS,
        "recipients": services.customer_recipients(ticket.customer),
        **extra,
    }


@login_required
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    require_internal(request)
    ticket = _ticket(request, number)
    return render(request, "tickets/detail.html", _detail_context(request, ticket))


@login_required
def ticket_new(request: HttpRequest) -> HttpResponse:
    _require_actor(request)
    form = TicketForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.ticket_create(user=request.user, **form.cleaned_data)
        except services.TicketError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(ticket)
    return render(request, "tickets/new.html", {"form": form})


def _next(request: HttpRequest, default: str) -> str:
    return safe_next(request, default)


@login_required
@require_POST
def ticket_escalate(request: HttpRequest) -> HttpResponse:
    """From the triage queue: a new ticket for the selected alerts, or add them to ticket ``ticket``."""
    _require_actor(request)
    alerts = selected_alerts(user=request.user, data=request.POST)
    back = _next(request, reverse("alert-list"))
    if not alerts:
        messages.error(request, "Select at least one alert to escalate.")
        return redirect(back)
    number = request.POST.get("ticket", "").strip()
    try:
        if number:
            ticket = _ticket(request, number)
            added = services.ticket_add_alerts(ticket=ticket, alerts=alerts, user=request.user)
            messages.success(request, f"Added {added} alert(s) to {ticket.number}.")
        else:
            ticket = services.ticket_create_from_alerts(alerts=alerts, user=request.user)
            messages.success(request, f"Opened {ticket.number} with {len(alerts)} alert(s).")
    except services.TicketError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    return redirect(ticket)


def _act(request: HttpRequest, number: str, fn, success: str) -> HttpResponse:
    _require_actor(request)
    ticket = _ticket(request, number)
    try:
        fn(ticket)
    except services.TicketError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success)
    return redirect(ticket)


@login_required
@require_POST
def ticket_transition(request: HttpRequest, number: str) -> HttpResponse:
    to = request.POST.get("to", "")
    label = Ticket.Status(to).label if to in Ticket.Status.values else to
    return _act(
        request,
        number,
        lambda t: services.ticket_transition(
            ticket=t,
            to=to,
            user=request.user,
            outcome=request.POST.get("outcome", ""),
            comment=request.POST.get("comment", ""),
            expected=request.POST.get("expected", ""),
        ),
        f"Status: {label}.",
    )


@login_required
@require_POST
def ticket_assign(request: HttpRequest, number: str) -> HttpResponse:
    username = request.POST.get("assignee", "")
    assignee = _acting_users().filter(username=username).first() if username else None
    if username and assignee is None:
        messages.error(request, f"No engineer called {username}.")
        return redirect("ticket-detail", number=number)
    return _act(
        request,
        number,
        lambda t: services.ticket_assign(ticket=t, assignee=assignee, user=request.user),
        f"Assigned to {assignee or 'nobody'}.",
    )


@login_required
@require_POST
def ticket_handoff(request: HttpRequest, number: str) -> HttpResponse:
    return _act(
        request,
        number,
        lambda t: services.ticket_escalate(
            ticket=t, level=request.POST.get("level", ""), reason=request.POST.get("reason", ""), user=request.user
        ),
        "Escalated.",
    )


@login_required
@require_POST
def ticket_undo(request: HttpRequest, number: str, entry_id: int) -> HttpResponse:
    return _act(
        request,
        number,
        lambda t: services.ticket_undo(ticket=t, entry_id=entry_id, user=request.user),
        "Automatic step undone.",
    )


@login_required
@require_POST
def ticket_note(request: HttpRequest, number: str) -> HttpResponse:
    return _act(
        request,
        number,
        lambda t: services.ticket_add_note(ticket=t, body=request.POST.get("body", ""), user=request.user),
        "Internal note added.",
    )


@login_required
@require_POST
def ticket_contact(request: HttpRequest, number: str) -> HttpResponse:
    return _act(
        request,
        number,
        lambda t: services.ticket_log_contact(
            ticket=t,
            channel=request.POST.get("channel", ""),
            contact=request.POST.get("contact", "")[:200],
            direction=request.POST.get("direction", "outbound"),
            summary=request.POST.get("summary", ""),
            # Only a ticked box shows it to the customer; anything else keeps it internal.
            visibility="customer" if request.POST.get("visibility") == "customer" else "internal",
            user=request.user,
        ),
        "Contact logged.",
    )


@login_required
@require_POST
def ticket_message(request: HttpRequest, number: str) -> HttpResponse:
    """The composer: preview the (edited) text, or send it to the customer's contacts."""
    _require_actor(request)
    ticket = _ticket(request, number)
    template = TicketTemplate.objects.filter(slug=request.POST.get("template", "")).first()
    subject = request.POST.get("subject", "")
    body = request.POST.get("body", "")
    if request.POST.get("action") == "preview":
        composer = {"template": template.slug if template else "", "subject": subject, "body": body}
        context = _detail_context(request, ticket, composer=composer, preview={"subject": subject, "body": body})
        return render(request, "tickets/detail.html", context)
    try:
        entry = services.ticket_send_customer_message(
            ticket=ticket, user=request.user, template=template, subject=subject, body=body
        )
    except (services.TicketError, MessageTemplateError) as exc:
        messages.error(request, str(exc))
    else:
        if entry.delivery_status == TimelineEntry.Delivery.SENT:
            messages.success(request, f"Message sent to {', '.join(entry.data['recipients'])}.")
        else:
            messages.error(request, f"The message could not be sent: {entry.data.get('error', 'unknown error')}.")
    return redirect(ticket)


@csrf_exempt
@require_POST
def inbound_mail(request: HttpRequest) -> JsonResponse:
    """The mail provider's inbound-parse webhook (Mailgun/SendGrid form fields): a customer's
    reply onto its ticket's timeline. Signed: HMAC-SHA256(secret, timestamp + token)."""
    data = request.POST
    timestamp = data.get("timestamp", "")
    if not mail.signature_valid(timestamp=timestamp, token=data.get("token", ""), signature=data.get("signature", "")):
        return JsonResponse({"error": "bad signature"}, status=403)
    try:
        age = abs(timezone.now().timestamp() - float(timestamp))
    except ValueError:
        age = float("inf")
    if age > settings.INBOUND_MAIL_MAX_AGE:
        return JsonResponse({"error": "signature too old"}, status=403)
    raw = data.get("headers", "") or data.get("message-headers", "")
    entry = services.ticket_receive_customer_reply(
        recipients=[data.get("recipient", ""), data.get("to", ""), data.get("cc", ""), mail.header_value(raw, "To")],
        sender=data.get("sender") or data.get("from", ""),
        subject=data.get("subject", ""),
        text=data.get("stripped-text") or data.get("body-plain") or data.get("text", ""),
        message_id=data.get("Message-Id") or mail.header_value(raw, "Message-ID"),
        in_reply_to=" ".join(
            v
            for v in (
                data.get("In-Reply-To") or mail.header_value(raw, "In-Reply-To"),
                mail.header_value(raw, "References"),
            )
            if v
        ),
    )
    # 200 either way: a reply to no ticket is not worth the provider's retries (it is logged).
    if entry is None:
        return JsonResponse({"status": "no ticket"}, status=200)
    return JsonResponse({"status": "ok", "ticket": entry.ticket.number, "entry": entry.pk}, status=200)

"""Writing reports: request, generate (figures, HTML, PDF), share, revoke, send, schedule."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime, time, timedelta
from email.utils import make_msgid
from typing import Any

import orjson
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe

from alerts.models import Attack
from console.audit import audit_record
from console.models import Customer
from reports import selectors
from reports.models import Report, ShareAccess, ShareLink, hash_token
from tickets import selectors as ticket_selectors

log = logging.getLogger(__name__)


class ReportError(ValueError):
    """A report request that cannot be made (unknown attack, attack of another customer, bad period)."""


# --------------------------------------------------------------------------- requesting


def _period_bounds(customer: Customer, start: date, end: date) -> tuple[datetime, datetime]:
    """Local calendar days [start, end] of the customer as UTC instants [from, to)."""
    tz = selectors.zone_of(customer)
    if end < start:
        raise ReportError("the period ends before it starts")
    if (end - start).days > 366:
        raise ReportError("a period report covers at most a year")
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def _fit_title(title: str) -> str:
    """Titles carry attacker-written targets: cut to the column (PostgreSQL refuses longer)."""
    limit = Report._meta.get_field("title").max_length
    return title if len(title) <= limit else title[: limit - 1] + "…"


def report_request(
    *,
    user: Any,
    customer: Customer | None = None,
    attack: Attack | None = None,
    ticket: Any = None,
    start: date | None = None,
    end: date | None = None,
    schedule: str = "",
    enqueue: bool = True,
) -> Report:
    """Create a report row for an attack, a ticket or a period of a customer, and queue its generation."""
    if attack is not None:
        if attack.customer_id is None:
            raise ReportError("this attack has no customer yet; assign it before reporting")
        if customer is not None and attack.customer_id != customer.pk:
            raise ReportError("this attack belongs to another customer")
        customer = attack.customer
        kind, parameters = Report.Kind.INCIDENT, {"attack": attack.pk}
        period = (attack.started_at, attack.ended_at or attack.last_seen)
        title = f"Attack on {attack.target}"
    elif ticket is not None:
        if customer is not None and ticket.customer_id != customer.pk:
            raise ReportError("this ticket belongs to another customer")
        customer = ticket.customer
        kind, parameters = Report.Kind.INCIDENT, {"ticket": ticket.number}
        period = (ticket.event_at or ticket.created_at, ticket.resolved_at)
        title = f"Incident {ticket.number}"
    else:
        if customer is None or start is None or end is None:
            raise ReportError("a period report needs a customer, a start and an end day")
        period = _period_bounds(customer, start, end)
        kind, parameters = Report.Kind.PERIOD, {"start": start.isoformat(), "end": end.isoformat()}
        title = f"Attacks {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    report = Report.objects.create(
        customer=customer,
        kind=kind,
        title=_fit_title(title),
        parameters=parameters,
        period_start=period[0],
        period_end=period[1],
        timezone=customer.timezone,
        schedule=schedule,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    audit_record(action="report.request", obj=report, after={"kind": kind, "parameters": parameters})
    if enqueue:
        report_enqueue(report=report)
    return report


def report_enqueue(*, report: Report, send: bool = False) -> None:
    from reports.tasks import REPORTS_QUEUE, generate_report

    transaction.on_commit(lambda: generate_report.apply_async((report.pk, send), queue=REPORTS_QUEUE))


# --------------------------------------------------------------------------- generating


def _progress(report: Report, value: int) -> None:
    Report.objects.filter(pk=report.pk).update(progress=value)
    report.progress = value


def report_figures(report: Report) -> dict[str, Any]:
    """The figures of a report, from its parameters, in its time zone."""
    tz = report.tz
    params = report.parameters or {}
    if "attack" in params:
        attack = Attack.objects.filter(pk=params["attack"], customer=report.customer).first()
        if attack is None:
            raise ReportError(f"attack {params['attack']} no longer exists")
        return selectors.attack_report_data(attack, tz=tz)
    if "ticket" in params:
        ticket = ticket_selectors.ticket_by_number(params["ticket"], customer=report.customer)
        if ticket is None:
            raise ReportError(f"ticket {params['ticket']} no longer exists")
        return selectors.ticket_report_data(ticket, tz=tz)
    return selectors.period_report_data(report.customer, report.period_start, report.period_end, tz=tz)


def render_body(report: Report, figures: dict[str, Any]) -> str:
    """The report itself, as HTML (escaped; charts as data + json_script, no script)."""
    return render_to_string("reports/_body.html", {"report": report, "f": figures, "chart_prefix": f"r{report.pk}"})


def render_print(report: Report, body: str) -> str:
    # The body was rendered by our own template, escaped; it is trusted as HTML here.
    return render_to_string("reports/print.html", {"report": report, "body": mark_safe(body)})


def report_generate(*, report_id: int, pdf: bool | None = None, send: bool = False) -> Report | None:
    """Build a queued report: figures, HTML snapshot, PDF, with progress. Safe to rerun.

    A report already done is left as it was (so a re-sent report is the one the
    customer saw); a report left running by a dead worker is taken over.
    """
    claimed = Report.objects.filter(pk=report_id, status__in=[Report.Status.QUEUED, Report.Status.RUNNING]).update(
        status=Report.Status.RUNNING, progress=5, error=""
    )
    report = Report.objects.select_related("customer").filter(pk=report_id).first()
    if report is None or not claimed:
        return report
    try:
        figures = report_figures(report)
        _progress(report, 40)
        body = render_body(report, figures)
        report.figures = orjson.loads(orjson.dumps(figures))
        report.html = body
        report.title = _fit_title(figures["report"]["title"])
        _progress(report, 55)
        report.pdf_error = ""
        if pdf if pdf is not None else settings.REPORT_PDF:
            from reports.pdf import PdfError, render_pdf

            try:
                content = render_pdf(render_print(report, body))
            except PdfError as exc:
                log.warning("report %s: no PDF: %s", report.pk, exc)
                report.pdf_error = str(exc)[:2000]
            else:
                if report.pdf:
                    report.pdf.delete(save=False)
                report.pdf.save(report.filename("pdf"), ContentFile(content), save=False)
        _progress(report, 90)
        report.status = Report.Status.DONE
        report.progress = 100
        report.generated_at = timezone.now()
        report.save()
    except Exception as exc:
        Report.objects.filter(pk=report.pk).update(status=Report.Status.FAILED, error=str(exc)[:2000])
        report.status, report.error = Report.Status.FAILED, str(exc)
        audit_record(action="report.fail", obj=report, after={"error": str(exc)[:500]})
        if isinstance(exc, ReportError):
            return report
        raise
    audit_record(action="report.generate", obj=report, after={"pdf": bool(report.pdf), "title": report.title})
    if send:
        report_send(report=report, user=None)
    return report


# --------------------------------------------------------------------------- exports

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value


def _stamp(value: datetime | None, report: Report) -> str:
    return value.astimezone(report.tz).strftime("%Y-%m-%d %H:%M %Z") if value else ""


def figures_csv(figures: dict[str, Any], report: Report | None = None) -> str:
    """The report's figures as one CSV: section, name, then the values of that row.

    Every section is read as optional: a report row can be ready with no figures stored
    (made before figures were kept, or written by a bulk tool), and its export must still
    answer, stating what the row knows and that the figures are unknown, not fail.
    """
    figures = figures or {}
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "name", "value", "detail", "detail2", "detail3"])

    def row(*cells: Any) -> None:
        w.writerow([_cell(c) for c in cells] + [""] * (6 - len(cells)))

    r = figures.get("report")
    if r:
        row("report", "customer", r["customer"]["name"])
        row("report", "title", r["title"])
        row("report", "timezone", r["timezone"])
        row("report", "period_start", r["period_start_local"])
        row("report", "period_end", r["period_end_local"])
        row("report", "generated_at", r["generated_local"])
    elif report is not None:
        # The figures' own header is the snapshot; without it, the row is the one place that knows.
        row("report", "customer", report.customer.name)
        row("report", "title", report.title)
        row("report", "timezone", report.timezone)
        row("report", "period_start", _stamp(report.period_start, report))
        row("report", "period_end", _stamp(report.period_end, report))
        row("report", "generated_at", _stamp(report.generated_at, report))
    if not figures:
        row("figures", "unknown", "this report was stored without its figures")
        return out.getvalue()
    for sentence in figures.get("summary") or []:
        row("summary", "", sentence)
    o = figures.get("overview") or {}
    for key in ("attacks", "alerts", "duration_s", "packets", "bytes", "dropped_packets", "dropped_share"):
        row("overview", key, o.get(key))
    for metric, peak in (o.get("peaks") or {}).items():
        row("peak", metric, peak["value"], peak["at_local"], peak["source"])
    for v in figures.get("vectors") or []:
        row("vector", v["vector"], v["alerts"], v["share"], v["peak_bps"], v["peak_pps"])
    for t in figures.get("targets") or []:
        row("target", t["target"], t["alerts"], t["peak_bps"], t["peak_pps"], t["peak_rps"])
    for p in figures.get("peaks_table") or []:
        row("attack", p["target"], p["peak_bps"], p["peak_pps"], p["peak_rps"], p["start_local"])
    for key, name in (("top_ips", "ip"), ("top_asns", "network"), ("top_countries", "country")):
        for s in figures.get(key) or []:
            row(key, s[name], s["alerts"], s["sampled"])
    for m in figures.get("mitigations") or []:
        row("mitigation", m["label"], m["what"], m["applied_local"], m["until_local"], m["matched_packets"])
    for e in figures.get("timeline") or []:
        row("timeline", e["at_local"], e["what"], e["detail"], e["source"])
    for rec in figures.get("recommendations") or []:
        row("recommendation", rec["topic"], rec["text"], rec["reason"])
    return out.getvalue()


def figures_json(figures: dict[str, Any]) -> bytes:
    return orjson.dumps(figures, option=orjson.OPT_INDENT_2)


# --------------------------------------------------------------------------- sharing


def share_link_create(*, report: Report, user: Any, days: int | None = None) -> tuple[ShareLink, str]:
    """A read-only link to this report for someone without an account. Returns the token, shown once."""
    days = days or settings.REPORT_SHARE_DAYS
    days = max(1, min(int(days), settings.REPORT_SHARE_MAX_DAYS))
    link = ShareLink(report=report, created_by=user if getattr(user, "is_authenticated", False) else None)
    token = link.set_token()
    link.expires_at = timezone.now() + timedelta(days=days)
    link.save()
    audit_record(
        action="report.share",
        obj=report,
        after={"share_link": link.pk, "hint": link.hint, "expires_at": link.expires_at},
    )
    return link, token


def share_link_revoke(*, link: ShareLink, user: Any) -> ShareLink:
    if link.revoked_at is None:
        ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        link.refresh_from_db()
        audit_record(action="report.share_revoke", obj=link.report, after={"share_link": link.pk, "hint": link.hint})
    return link


def share_link_open(*, token: str, ip: str | None = None, user_agent: str = "", what: str = "html") -> ShareLink | None:
    """The usable link of this token, with the access logged; None when unknown, expired or revoked."""
    if not token or len(token) > 100:
        return None
    link = (
        ShareLink.objects.usable()
        .select_related("report", "report__customer")
        .filter(token_hash=hash_token(token), report__status=Report.Status.DONE)
        .first()
    )
    if link is None:
        return None
    now = timezone.now()
    ShareAccess.objects.create(link=link, at=now, ip=ip or None, user_agent=user_agent[:300], what=what)
    from django.db.models import F

    ShareLink.objects.filter(pk=link.pk).update(access_count=F("access_count") + 1, last_accessed_at=now)
    return link


# --------------------------------------------------------------------------- sending


def report_send(*, report: Report, user: Any, recipients: list[str] | None = None) -> list[str]:
    """Email the report as it was generated (summary in the body, PDF attached) to the report contacts."""
    recipients = recipients or report.customer.report_emails
    if not recipients or report.status != Report.Status.DONE:
        return []
    figures = report.figures or {}
    tickets = _report_tickets(report)
    greeting = next(
        (str(c["name"]).strip() for c in report.customer.contacts or [] if isinstance(c, dict) and c.get("name")),
        report.customer.name,
    )
    body = "\n".join(
        [
            f"Hello {greeting},",
            "",
            f"{report.title} for {report.customer.name}",
            "",
            # A report stored without its figures has no summary to quote: say so, guess nothing.
            *(figures.get("summary") or ["The figures of this report are not available."]),
            "",
            # Say only what is attached: a report can be ready without a PDF (printing off or failed).
            "The full report, with its charts and tables, is attached as a PDF."
            if report.pdf
            else "No PDF of this report is available; what it holds is attached as CSV.",
            "",
            "— Shieldwall SOC",
        ]
    )
    # The title names the attack's target, which a feed wrote: a line break in it would make
    # the mail refuse the header (BadHeaderError) and the report never go out.
    subject = " ".join(f"[Shieldwall] {report.title} — {report.customer.name}".split())
    # A report about a ticket is a message in that ticket's thread: answerable, threaded.
    headers: dict[str, str] = {}
    reply_to: list[str] = []
    domain = getattr(settings, "TICKET_REPLY_DOMAIN", "shieldwall.invalid")
    message_id = make_msgid(idstring=f"report-{report.pk}", domain=domain)
    headers["Message-ID"] = message_id
    if tickets:
        from tickets.mail import reply_address, thread_ids

        previous = thread_ids(tickets[0])
        reply_to = [reply_address(tickets[0])]
        if previous:
            headers["In-Reply-To"] = previous[-1]
            headers["References"] = " ".join(previous)
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=reply_to,
        headers=headers,
    )
    if report.pdf:
        with report.pdf.open("rb") as fh:
            message.attach(report.filename("pdf"), fh.read(), "application/pdf")
    message.attach(report.filename("csv"), figures_csv(figures, report).encode(), "text/csv")
    message.send()
    now = timezone.now()
    Report.objects.filter(pk=report.pk).update(sent_at=now, sent_to=recipients)
    report.sent_at, report.sent_to = now, recipients
    audit_record(action="report.send", obj=report, after={"to": recipients}, actor=user)
    if tickets:
        from tickets.services import ticket_record_report_sent

        for ticket in tickets:
            ticket_record_report_sent(
                ticket=ticket,
                report_title=report.title,
                report_id=report.pk,
                recipients=recipients,
                message_id=message_id,
                user=user,
            )
    return recipients


def _report_tickets(report: Report) -> list[Any]:
    """The tickets a report is about: its own ticket, or the tickets of its attack."""
    params = report.parameters or {}
    if "ticket" in params:
        ticket = ticket_selectors.ticket_by_number(params["ticket"], customer=report.customer)
        return [ticket] if ticket else []
    if "attack" in params:
        return ticket_selectors.tickets_for_attacks([params["attack"]], customer=report.customer, limit=5)
    return []


# --------------------------------------------------------------------------- schedule


def _previous_week(today: date) -> tuple[date, date]:
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(days=7), monday - timedelta(days=1)


def _previous_month(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    last = first - timedelta(days=1)
    return last.replace(day=1), last


def reports_schedule(*, now: datetime | None = None) -> list[Report]:
    """Weekly and monthly reports of each customer with report contacts, once per period.

    The week and the month are the customer's own (their time zone); the unique
    constraint on (customer, schedule, period start) makes a second run a no-op.
    """
    now = now or timezone.now()
    created = []
    for customer in Customer.objects.current().order_by("pk"):  # a former (archived) customer gets no more mail
        if not customer.report_emails:
            continue
        today = now.astimezone(selectors.zone_of(customer)).date()
        for schedule, (start, end) in (
            (Report.Schedule.WEEKLY, _previous_week(today)),
            (Report.Schedule.MONTHLY, _previous_month(today)),
        ):
            if schedule not in settings.REPORT_SCHEDULES:
                continue
            period_start, _ = _period_bounds(customer, start, end)
            if Report.objects.filter(customer=customer, schedule=schedule, period_start=period_start).exists():
                continue
            with transaction.atomic():
                report = Report.objects.create(
                    customer=customer,
                    kind=Report.Kind.PERIOD,
                    title=f"{schedule.title()} attack report",
                    parameters={"start": start.isoformat(), "end": end.isoformat(), "schedule": schedule},
                    period_start=period_start,
                    period_end=_period_bounds(customer, start, end)[1],
                    timezone=customer.timezone,
                    schedule=schedule,
                )
                audit_record(action="report.schedule", obj=report, after={"schedule": schedule})
                report_enqueue(report=report, send=True)
            created.append(report)
    return created

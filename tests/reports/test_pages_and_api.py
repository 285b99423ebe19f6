"""Generating from the pages and the API, progress, sharing, sending, the schedule, the schema."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.urls import reverse

from console.models import AuditEvent
from reports import services
from reports.models import Report, ShareLink
from tests.reports.conftest import SUMMARY

pytestmark = pytest.mark.django_db


def test_new_report_link_preselects_the_attack(incident, engineer_client):
    attack = incident["attack"]

    page = engineer_client.get(f"/reports/new/?attack={attack.pk}").content.decode()

    assert f'<option value="{attack.pk}" selected>' in page


def test_generate_from_the_page_queues_runs_and_shows_the_report(
    incident, engineer_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = engineer_client.post(reverse("report-new"), {"subject": "attack", "attack": incident["attack"].pk})

    assert len(callbacks) == 1
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == report.get_absolute_url()
    assert report.status == "done" and report.progress == 100 and report.generated_at
    assert report.parameters == {"attack": incident["attack"].pk}
    assert report.timezone == "America/New_York"
    page = engineer_client.get(report.get_absolute_url()).content.decode()
    assert SUMMARY in page
    assert f'data-chart="r{report.pk}-traffic"' in page
    assert f'id="r{report.pk}-traffic"' in page
    assert "<script>" not in page  # charts travel as JSON data, never as inline script
    assert AuditEvent.objects.filter(action="report.generate", object_id=str(report.pk)).exists()


def test_progress_fragment_polls_until_done(incident, engineer_client, engineer):
    report = services.report_request(user=engineer, attack=incident["attack"], enqueue=False)

    pending = engineer_client.get(f"/reports/{report.pk}/progress/", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in pending.content and "HX-Refresh" not in pending
    services.report_generate(report_id=report.pk)
    done = engineer_client.get(f"/reports/{report.pk}/progress/", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"


def test_period_and_ticket_reports_from_the_form(incident, engineer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        engineer_client.post(
            reverse("report-new"), {"subject": "period", "customer": "acme", "start": "2026-03-01", "end": "2026-03-31"}
        )
        engineer_client.post(reverse("report-new"), {"subject": "ticket", "ticket": "SW-2026-0001"})

    period, ticket = Report.objects.order_by("id")
    assert period.kind == "period" and period.status == "done"
    assert period.period_start == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # local midnight EST
    assert period.figures["overview"]["attacks"] == 1
    assert ticket.parameters == {"ticket": "SW-2026-0001"} and ticket.status == "done"


def test_form_refuses_a_period_without_dates(customer_a, engineer_client):
    response = engineer_client.post(reverse("report-new"), {"subject": "period", "customer": "acme"})
    assert response.status_code == 400
    assert not Report.objects.exists()


def test_viewer_role_cannot_generate(incident, client, viewer):
    client.force_login(viewer)
    assert client.post(reverse("report-new"), {"subject": "attack", "attack": incident["attack"].pk}).status_code == 403


def test_share_and_revoke_from_the_page(incident, build_report, engineer_client):
    report = build_report(attack=incident["attack"])

    page = engineer_client.post(f"/reports/{report.pk}/share/", {"days": 7}).content.decode()

    link = ShareLink.objects.get()
    assert 'id="share-url"' in page and "/share/" in page
    token = page.split("/share/")[1].split("/")[0]
    assert engineer_client.get(f"/share/{token}/").status_code == 200
    engineer_client.post(f"/reports/{report.pk}/share/{link.pk}/revoke/")
    assert engineer_client.get(f"/share/{token}/").status_code == 404


def test_resend_emails_the_report_as_generated(incident, build_report, engineer_client):
    report = build_report(attack=incident["attack"])

    engineer_client.post(f"/reports/{report.pk}/send/")

    (message,) = mail.outbox
    assert message.to == ["sre@acme.example"]
    assert SUMMARY in message.body
    assert [a[0] for a in message.attachments] == [report.filename("csv")]
    report.refresh_from_db()
    assert report.sent_to == ["sre@acme.example"] and report.sent_at


def test_send_survives_a_line_break_in_the_attack_target(incident, build_report, engineer):
    """The title names the target a feed wrote; a CR/LF in it must not stop the mail (BadHeaderError)."""
    attack = incident["attack"]
    attack.target = "evil.example\r\nBcc: attacker@evil.example"
    attack.save(update_fields=["target"])
    report = build_report(attack=attack)

    assert services.report_send(report=report, user=engineer) == ["sre@acme.example"]

    (message,) = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "evil.example Bcc: attacker@evil.example" in message.subject
    assert message.bcc == [] and message.message()["Bcc"] is None


def test_a_report_on_the_longest_target_fits_its_title_column(incident, build_report):
    """PostgreSQL refuses a title past 300 characters (SQLite would not say): the report failed."""
    attack = incident["attack"]
    attack.target = "a" * 247 + ".example"  # the column holds 255
    attack.save(update_fields=["target"])
    report = build_report(attack=attack)

    assert report.status == "done", report.error
    assert len(report.title) <= 300 and report.title.endswith("…")


def test_schedule_creates_weekly_and_monthly_reports_once_and_emails_them(
    incident, settings, django_capture_on_commit_callbacks
):
    now = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # a Wednesday: last week 23–29 March, last month March

    with django_capture_on_commit_callbacks(execute=True):
        created = services.reports_schedule(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        again = services.reports_schedule(now=now)

    assert sorted(r.schedule for r in created) == ["monthly", "weekly"] and again == []
    monthly = Report.objects.get(schedule="monthly")
    assert monthly.parameters["start"] == "2026-03-01" and monthly.parameters["end"] == "2026-03-31"
    assert monthly.figures["overview"]["attacks"] == 1
    weekly = Report.objects.get(schedule="weekly")
    assert weekly.parameters["start"] == "2026-03-23" and weekly.figures["overview"]["attacks"] == 0
    assert sorted(m.subject for m in mail.outbox) == sorted(
        f"[Shieldwall] {r.title} — Acme Corp" for r in Report.objects.all()
    )
    assert all(m.to == ["sre@acme.example"] for m in mail.outbox)


def test_an_archived_customer_gets_no_scheduled_report(incident, customer_a, admin_user):
    from console.services import customer_archive

    customer_archive(customer=customer_a, actor=admin_user)
    assert services.reports_schedule(now=datetime(2026, 4, 1, 12, 0, tzinfo=UTC)) == []
    assert not Report.objects.exists() and mail.outbox == []


# --------------------------------------------------------------------------- API


def test_api_creates_lists_and_retrieves(incident, api_as, engineer, django_capture_on_commit_callbacks):
    api = api_as(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/reports/", {"attack": incident["attack"].pk}, format="json")

    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    detail = api.get(f"/api/reports/{pk}/").json()
    assert detail["status"] == "done"
    assert detail["figures"]["summary"][0] == SUMMARY
    assert detail["csv_url"] == f"/reports/{pk}/download/csv/"
    assert [r["id"] for r in api.get("/api/reports/").json()["results"]] == [pk]


def test_api_refuses_unclear_requests(customer_a, api_as, engineer):
    api = api_as(engineer)
    assert api.post("/api/reports/", {}, format="json").status_code == 400
    assert api.post("/api/reports/", {"attack": 999999}, format="json").status_code == 404
    response = api.post(
        "/api/reports/", {"customer": "acme", "start": "2026-03-31", "end": "2026-03-01"}, format="json"
    )
    assert response.status_code == 400


def test_api_share_and_revoke(incident, build_report, api_as, engineer, customer_viewer, client):
    report = build_report(attack=incident["attack"])
    api = api_as(engineer)

    shared = api.post(f"/api/reports/{report.pk}/share/", {"days": 2}, format="json")

    assert shared.status_code == 201
    url = shared.json()["url"]
    path = url[url.index("/share/") :]
    assert client.get(path).status_code == 200
    revoked = api.post(f"/api/reports/{report.pk}/revoke-share/", {"link": shared.json()["link"]["id"]}, format="json")
    assert revoked.json()["state"] == "revoked"
    assert client.get(path).status_code == 404
    # A customer viewer reads but does not share.
    assert api_as(customer_viewer).post(f"/api/reports/{report.pk}/share/", {}, format="json").status_code == 403


def test_api_list_has_no_n_plus_one(incident, build_report, api_as, engineer, django_assert_max_num_queries):
    for _ in range(5):
        build_report(attack=incident["attack"])
    api = api_as(engineer)
    with django_assert_max_num_queries(8):
        assert len(api.get("/api/reports/").json()["results"]) == 5


def test_schema_builds_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--file", "/dev/null"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "SHIELDWALL_TESTING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]

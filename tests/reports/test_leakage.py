"""What a report must never show: internal notes, another customer's data, a dead link, a foreign report."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reports import services
from reports.models import ShareAccess, ShareLink
from tests.reports.conftest import CUSTOMER_MESSAGE, MARKER

pytestmark = pytest.mark.django_db


def test_internal_ticket_notes_never_reach_html_csv_json_or_the_share_view(incident, build_report, engineer, client):
    report = build_report(attack=incident["attack"])
    _, token = services.share_link_create(report=report, user=engineer)
    client.force_login(engineer)

    outputs = {
        "html snapshot": report.html,
        "detail page": client.get(report.get_absolute_url()).content.decode(),
        "csv": client.get(f"/reports/{report.pk}/download/csv/").content.decode(),
        "json": client.get(f"/reports/{report.pk}/download/json/").content.decode(),
        "api": json.dumps(client.get(f"/api/reports/{report.pk}/").json()),
    }
    client.logout()
    outputs["share view"] = client.get(f"/share/{token}/").content.decode()
    outputs["share csv"] = client.get(f"/share/{token}/csv/").content.decode()

    for name, body in outputs.items():
        assert MARKER not in body, f"internal note leaked into the {name}"
        assert "10.9.8.7" not in body, f"internal note leaked into the {name}"
        assert "they were rude" not in body, f"internal contact log leaked into the {name}"
    # The customer-facing message is there: the filter is on visibility, not on the ticket.
    assert CUSTOMER_MESSAGE in outputs["html snapshot"] and CUSTOMER_MESSAGE in outputs["share view"]


def test_a_contact_logged_without_choosing_stays_out_of_the_customers_report(
    incident, build_report, engineer_client, customer_viewer, client
):
    ticket = incident["ticket"]
    contact = reverse("ticket-contact", args=[ticket.number])
    engineer_client.post(contact, {"channel": "phone", "summary": "Their CTO blamed the intern"})
    told = {"channel": "phone", "summary": "Confirmed the site is back", "visibility": "customer"}
    engineer_client.post(contact, told)
    report = build_report(ticket=ticket)
    client.force_login(customer_viewer)
    page = client.get(report.get_absolute_url())
    assert page.status_code == 200
    body = page.content.decode()
    assert "Confirmed the site is back" in body
    assert "blamed the intern" not in body and "blamed the intern" not in json.dumps(report.figures)


def test_a_ticket_report_shows_only_its_customer_facing_timeline(incident, build_report):
    report = build_report(ticket=incident["ticket"])

    assert report.status == "done", report.error
    assert MARKER not in report.html and MARKER not in json.dumps(report.figures)
    assert CUSTOMER_MESSAGE in report.html
    assert report.figures["overview"]["peaks"]["bps"]["value"] == 312e9


def test_share_link_of_customer_a_never_shows_customer_b(incident, other_incident, build_report, engineer, client):
    report_a = build_report(attack=incident["attack"])
    report_b = build_report(attack=other_incident["attack"])
    _, token_a = services.share_link_create(report=report_a, user=engineer)

    body = client.get(f"/share/{token_a}/").content.decode()

    assert "Acme Corp" in body
    assert "Globex" not in body and "globex.example" not in body and "GLOBEX-ONLY" not in body
    # The link names its report only: no way to walk to another report from it.
    assert client.get(f"/share/{token_a}/?report={report_b.pk}").content.decode().count("GLOBEX-ONLY") == 0
    assert client.get(f"/reports/{report_b.pk}/").status_code == 302  # no session: to the login


def test_expired_revoked_and_unknown_links_answer_404(incident, build_report, engineer, client):
    report = build_report(attack=incident["attack"])
    expired, expired_token = services.share_link_create(report=report, user=engineer)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked, revoked_token = services.share_link_create(report=report, user=engineer)
    services.share_link_revoke(link=revoked, user=engineer)
    _, good = services.share_link_create(report=report, user=engineer)

    assert client.get(f"/share/{expired_token}/").status_code == 404
    assert client.get(f"/share/{revoked_token}/").status_code == 404
    assert client.get(f"/share/{revoked_token}/pdf/").status_code == 404
    assert client.get("/share/not-a-token/").status_code == 404
    assert client.get(f"/share/{good[:-1]}x/").status_code == 404
    assert client.get(f"/share/{good}/").status_code == 200


def test_share_links_store_only_a_hash_and_log_each_access(incident, build_report, engineer, client):
    report = build_report(attack=incident["attack"])
    link, token = services.share_link_create(report=report, user=engineer, days=3)

    client.get(f"/share/{token}/", HTTP_USER_AGENT="Mozilla/5.0 test", REMOTE_ADDR="198.51.100.200")
    client.get(f"/share/{token}/json/")

    link.refresh_from_db()
    assert token not in link.token_hash and len(link.token_hash) == 64
    assert link.access_count == 2
    assert (link.expires_at - timezone.now()).days in (2, 3)
    assert list(ShareAccess.objects.filter(link=link).order_by("at", "id").values_list("what", "ip", "user_agent")) == [
        ("html", "198.51.100.200", "Mozilla/5.0 test"),
        ("json", "127.0.0.1", ""),
    ]


def test_share_view_is_read_only_and_not_indexed(incident, build_report, engineer, client):
    report = build_report(attack=incident["attack"])
    _, token = services.share_link_create(report=report, user=engineer)

    response = client.get(f"/share/{token}/")

    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    assert "<form" not in body and "Create share link" not in body
    assert client.post(f"/share/{token}/").status_code == 405


def test_customer_viewer_sees_own_reports_and_404_for_others(
    incident, other_incident, build_report, customer_viewer, client
):
    own = build_report(attack=incident["attack"])
    foreign = build_report(attack=other_incident["attack"])
    client.force_login(customer_viewer)

    listing = client.get(reverse("report-list")).content.decode()
    assert own.get_absolute_url() in listing and foreign.get_absolute_url() not in listing
    assert client.get(own.get_absolute_url()).status_code == 200
    assert client.get(f"/reports/{own.pk}/download/csv/").status_code == 200
    for path in (
        foreign.get_absolute_url(),
        f"/reports/{foreign.pk}/download/csv/",
        f"/reports/{foreign.pk}/download/json/",
        f"/reports/{foreign.pk}/progress/",
        f"/api/reports/{foreign.pk}/",
    ):
        assert client.get(path).status_code == 404, path
    # Viewing is all a customer viewer does: no sharing, no generating (their role may not: 403).
    assert client.post(f"/reports/{own.pk}/share/").status_code == 403
    assert client.get("/reports/new/").status_code == 403
    assert [r["id"] for r in client.get("/api/reports/").json()["results"]] == [own.pk]


def test_outsider_sees_no_report(incident, build_report, outsider, client):
    report = build_report(attack=incident["attack"])
    client.force_login(outsider)

    assert client.get(report.get_absolute_url()).status_code == 404
    assert report.get_absolute_url() not in client.get(reverse("report-list")).content.decode()

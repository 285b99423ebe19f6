"""The outputs: a PDF printed by Chromium with its charts, CSV and JSON of the same figures."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports import services
from tests.reports.conftest import MARKER, SUMMARY
from tests.reports.pngread import colored_pixels

pytestmark = pytest.mark.django_db

needs_pdf_tools = pytest.mark.skipif(
    not (Path("/usr/bin/chromium").exists() and shutil.which("pdftotext") and shutil.which("pdftoppm")),
    reason="needs Debian's chromium and poppler-utils (pdftotext, pdftoppm)",
)


def pdf_pages(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return out.split("\f")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@needs_pdf_tools
def test_pdf_holds_the_customer_the_peaks_the_summary_and_drawn_charts(incident, build_report, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    report = build_report(attack=incident["attack"], pdf=True)

    assert report.status == "done", report.error
    assert report.pdf, report.pdf_error
    path = Path(report.pdf.path)
    assert path.read_bytes()[:5] == b"%PDF-"
    pages = pdf_pages(path)
    everything = squash(" ".join(pages))
    assert "Acme Corp" in everything
    assert "312 Gbps" in everything and "41 Mpps" in everything
    assert squash(SUMMARY) in everything
    assert MARKER not in everything and "10.9.8.7" not in everything

    # The traffic timeline starts a page of its own; that page must show a drawn chart.
    chart_page = next(i for i, page in enumerate(pages, start=1) if "Traffic timeline" in page)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", str(chart_page), "-l", str(chart_page), str(path), str(tmp_path / "p")],
        check=True,
    )
    (png,) = sorted(tmp_path.glob("p*.png"))
    assert colored_pixels(png) > 2000, "the chart page has no coloured chart pixels"
    # And a text-only page (the summary) has almost none: the count measures charts, not text.
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(path), str(tmp_path / "s")], check=True)
    (first,) = sorted(tmp_path.glob("s*.png"))
    assert colored_pixels(first) < colored_pixels(png) / 4


def test_csv_has_the_figures_and_neutralises_formula_cells(incident, build_report):
    report = build_report(attack=incident["attack"])
    report.figures["top_ips"].append({"ip": '=HYPERLINK("http://evil")', "alerts": 1, "sampled": 0})
    report.figures["timeline"].append({"at_local": "x", "what": "+cmd", "detail": "@SUM(1)", "source": "-2+3"})

    rows = list(csv.reader(io.StringIO(services.figures_csv(report.figures))))

    assert ["peak", "bps", repr(312e9), "2026-03-03 02:31:00 EST", "alerts", ""] in rows
    assert ["vector", "dns_amplification", "2", repr(2 / 3), repr(200e9), repr(30e6)] in rows
    assert ["summary", "", SUMMARY, "", "", ""][:3] == next(r for r in rows if r[0] == "summary")[:3]
    cells = [c for r in rows for c in r]
    assert '\'=HYPERLINK("http://evil")' in cells
    assert "'+cmd" in cells and "'@SUM(1)" in cells and "'-2+3" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert not any(c.startswith("-") and not re.fullmatch(r"-[\d.e+-]+", c) for c in cells)


def test_json_export_is_the_stored_figures(incident, build_report, engineer_client):
    report = build_report(attack=incident["attack"])

    response = engineer_client.get(f"/reports/{report.pk}/download/json/")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="shieldwall-report-acme-')
    data = json.loads(response.content)
    assert data["overview"]["peaks"]["bps"]["value"] == 312e9
    assert data["summary"][0] == SUMMARY
    assert data == json.loads(json.dumps(report.figures))


def test_a_report_keeps_what_it_said_when_the_data_changes(incident, build_report):
    report = build_report(attack=incident["attack"])
    incident["attack"].alerts.update(bps=1e12)

    again = services.report_generate(report_id=report.pk)

    assert again.figures["overview"]["peaks"]["bps"]["value"] == 312e9
    assert "312 Gbps" in again.html


# ----------------------------------------------------------------- reports with nothing in them


def _downloads_and_send(client, report):
    """What an engineer does with a ready report: every download, then "Email to report contacts"."""
    answers = {kind: client.get(f"/reports/{report.pk}/download/{kind}/") for kind in ("pdf", "csv", "json")}
    answers["send"] = client.post(f"/reports/{report.pk}/send/")
    return answers


@needs_pdf_tools
def test_a_period_with_no_attacks_downloads_as_pdf_and_is_sent(
    customer_a, build_report, engineer_client, tmp_path, settings
):
    from datetime import date

    from django.core import mail

    settings.MEDIA_ROOT = tmp_path / "media"
    report = build_report(customer=customer_a, start=date(2026, 1, 1), end=date(2026, 1, 7), pdf=True)
    assert report.status == "done", report.error

    answers = _downloads_and_send(engineer_client, report)

    assert answers["pdf"].status_code == 200
    pdf = b"".join(answers["pdf"].streaming_content)
    (tmp_path / "r.pdf").write_bytes(pdf)
    assert "no attacks against Acme Corp were detected" in squash(" ".join(pdf_pages(tmp_path / "r.pdf")))
    assert answers["csv"].status_code == 200 and answers["json"].status_code == 200
    assert answers["send"].status_code == 302
    (message,) = mail.outbox
    assert "no attacks against Acme Corp were detected" in message.body
    assert "attached as a PDF" in message.body
    assert sorted(a[0] for a in message.attachments) == sorted([report.filename("csv"), report.filename("pdf")])


def test_a_ready_report_stored_without_figures_still_downloads_and_sends(
    customer_a, engineer_client, settings, tmp_path
):
    """A ready row with empty figures (older rows, bulk tools) answered 500 (KeyError 'report') on CSV and send."""
    from django.core import mail
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from reports.models import Report

    settings.MEDIA_ROOT = tmp_path / "media"
    report = Report.objects.create(
        customer=customer_a,
        kind=Report.Kind.PERIOD,
        title="Weekly attack report",
        status=Report.Status.DONE,
        generated_at=timezone.now(),
        html="<p>report</p>",
        figures={},
    )
    report.pdf.save(report.filename("pdf"), ContentFile(b"%PDF-1.4 stored"), save=True)

    answers = _downloads_and_send(engineer_client, report)

    assert answers["pdf"].status_code == 200 and b"".join(answers["pdf"].streaming_content) == b"%PDF-1.4 stored"
    assert answers["json"].status_code == 200 and json.loads(answers["json"].content) == {}
    assert answers["csv"].status_code == 200
    rows = list(csv.reader(io.StringIO(answers["csv"].content.decode())))
    # What the row knows is stated; what it does not is said to be unknown, not made up.
    assert ["report", "customer", "Acme Corp", "", "", ""] in rows
    assert ["report", "title", "Weekly attack report", "", "", ""] in rows
    assert ["figures", "unknown", "this report was stored without its figures", "", "", ""] in rows
    assert not any(r[0] in ("overview", "peak", "summary") for r in rows)
    assert answers["send"].status_code == 302
    (message,) = mail.outbox
    assert "The figures of this report are not available." in message.body
    assert [a[0] for a in message.attachments] == [report.filename("pdf"), report.filename("csv")]


def test_mail_of_a_report_without_a_pdf_does_not_claim_one(incident, build_report, engineer):
    from django.core import mail

    report = build_report(attack=incident["attack"])  # printing is off in these tests: no PDF
    assert not report.pdf

    services.report_send(report=report, user=engineer)

    (message,) = mail.outbox
    assert "attached as a PDF" not in message.body
    assert "No PDF of this report is available" in message.body


def test_a_pdf_whose_file_is_gone_is_a_404_not_a_500(incident, build_report, engineer_client, settings, tmp_path):
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT = tmp_path / "media"
    report = build_report(attack=incident["attack"])
    report.pdf.save(report.filename("pdf"), ContentFile(b"%PDF-1.4"), save=True)
    Path(report.pdf.path).unlink()

    assert engineer_client.get(f"/reports/{report.pk}/download/pdf/").status_code == 404

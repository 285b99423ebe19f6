"""A report says only what the data says: both mitigations of the ledger, ended with the
ticket's outcome, charts inside the incident window, durations as of the generation time."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from console import units
from mitigations.models import Mitigation
from reports import charts as chart_lib
from reports.selectors import attack_report_data, ticket_report_data
from tests.reports.conftest import END, T0, make_alert, make_attack
from tests.reports.pngread import colored_pixels
from tests.reports.test_outputs import needs_pdf_tools, pdf_pages, squash
from traffic.models import TrafficSample

pytestmark = pytest.mark.django_db

RESOLVED = END + timedelta(minutes=10)


@pytest.fixture
def two_mitigations(incident, engineer):
    """The seeded incident, a second mitigation rolled back after the attack, and the ticket resolved."""
    second = Mitigation.objects.create(
        customer=incident["customer"],
        attack=None,  # made from the ledger without a link: the report must still list it
        title="Rate-limit UDP from AS64501",
        kind="firewall_rule",
        expression="ip.dst == 203.0.113.10 and udp",
        action="block",
        targets=["export"],
        state="rolled_back",
        author=engineer,
        applied_at=T0 + timedelta(minutes=20),
        expires_at=END + timedelta(hours=1),
        ended_at=END + timedelta(minutes=5),
    )
    ticket = incident["ticket"]
    ticket.status = "resolved"
    ticket.outcome = "tp_impact"
    ticket.resolved_at = RESOLVED
    ticket.save()
    # A capture recorded years earlier, attached by mistake: it must not stretch the chart.
    TrafficSample.objects.create(
        customer=incident["customer"],
        attack=incident["attack"],
        name="old.pcap",
        kind="pcap",
        status="ready",
        summary={"per_second": [{"t": datetime(2022, 5, 1, tzinfo=UTC).timestamp(), "bits": 1e6, "packets": 10}]},
    )
    return {**incident, "second": second}


def _inside(x: str, lo: str, hi: str) -> bool:
    return lo <= x <= hi


def test_report_lists_both_mitigations_of_the_ledger_with_target_and_times(two_mitigations):
    f = ticket_report_data(two_mitigations["ticket"])

    rows = f["mitigations"]
    assert [(m["label"], m["title"]) for m in rows] == [
        ("M1", "Drop DNS/NTP reflection to 203.0.113.10"),
        ("M2", "Rate-limit UDP from AS64501"),
    ]
    assert [m["targets"] for m in rows] == ["nftables", "export"]
    assert [m["applied_local"] for m in rows] == ["2026-03-03 02:20:00 EST", "2026-03-03 02:34:00 EST"]
    assert [m["until_local"] for m in rows] == ["2026-03-03 03:10:00 EST", "2026-03-03 03:07:00 EST"]
    assert [m["status"] for m in rows] == ["ended", "ended"]


def test_report_says_ended_with_the_tickets_resolution_and_outcome(two_mitigations):
    f = ticket_report_data(two_mitigations["ticket"])

    summary = " ".join(f["summary"])
    assert "It lasted 48 min" in summary
    assert "2 mitigations were applied, the first at 02:20 EST" in summary and "both have ended" in summary
    assert "SW-2026-0001, resolved at 03:12 EST (true positive, with impact)" in summary
    assert "ongoing" not in summary
    assert not f["overview"]["ongoing"]
    assert ("03:12", "SW-2026-0001 resolved", "outcome: true positive, with impact") in [
        (e["at_local"][11:16], e["what"], e["detail"]) for e in f["timeline"]
    ]


def test_chart_is_drawn_inside_the_incident_window_per_minute_with_units(two_mitigations):
    f = ticket_report_data(two_mitigations["ticket"])
    traffic = f["charts"]["traffic"]
    lo, hi = "2026-03-03 02:14:00", "2026-03-03 03:02:00"

    assert traffic["layout"]["xaxis"]["range"] == [lo, hi]
    assert traffic["data"], "the chart has no series"
    for trace in traffic["data"]:
        assert all(_inside(x, lo, hi) for x in trace["x"]), trace["name"]
        if "(alerts)" in trace["name"]:
            steps = {
                (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
                for a, b in zip(trace["x"], trace["x"][1:], strict=False)
            }
            assert steps == {60.0}, "points are a minute apart"
    # The 2022 capture is named as outside the window, not drawn.
    assert not any("old.pcap" in t["name"] for t in traffic["data"])
    assert f["chart_notes"] == ["capture old.pcap lies outside the incident window and is not drawn."]
    assert traffic["layout"]["yaxis"]["title"]["text"] == "bits/s"
    assert traffic["layout"]["yaxis2"]["title"]["text"] == "packets/s"
    assert traffic["layout"]["yaxis"]["exponentformat"] == "SI"
    for shape in traffic["layout"]["shapes"]:
        assert _inside(shape["x0"], lo, hi)


def test_html_states_nothing_the_data_contradicts(two_mitigations, build_report):
    report = build_report(ticket=two_mitigations["ticket"])
    html = report.html

    assert report.status == "done", report.error
    assert "No mitigation was applied" not in html
    assert "Rate-limit UDP from AS64501" in html and "Drop DNS/NTP reflection to 203.0.113.10" in html
    assert html.count('data-status="ended"') == 2 and 'data-status="active"' not in html
    assert "still ongoing" not in html and ">ongoing<" not in html
    assert "resolved 2026-03-03 03:12:00 EST, outcome: True positive, with impact" in html


def test_an_ongoing_attack_reports_its_duration_so_far(db, feed, customer_a):
    started = timezone.now() - timedelta(minutes=23)
    attack = make_attack(customer_a, start=started, end=started)
    attack.ongoing, attack.ended_at = True, None
    attack.save()
    make_alert(feed, customer_a, attack, 1, vector="syn_flood", at=started, pps=2e6, packets=10)

    f = attack_report_data(attack)

    assert f["overview"]["duration"] == "23 min so far (ongoing)"
    assert f["peaks_table"][0]["duration"] == "23 min so far"
    assert "still ongoing when this report was generated" in f["summary"][1]
    assert "23 min after it began" in f["summary"][1]
    # The chart runs from the start to now, never a zero-width axis.
    lo, hi = f["charts"]["traffic"]["layout"]["xaxis"]["range"]
    assert (datetime.fromisoformat(hi) - datetime.fromisoformat(lo)) >= timedelta(minutes=22)


def test_count_charts_have_whole_number_ticks():
    axis = chart_lib.bars(["New", "Mitigating"], [1, 2], title="Open tickets", axis="tickets")["layout"]["yaxis"]
    assert axis["tickformat"] == ",d" and axis["dtick"] == 1


def test_one_vocabulary_and_one_formatter():
    from alerts.services import vector_title as alerts_title
    from reports.text import si, vector_title
    from tickets.messages import format_bps

    assert alerts_title("synack_reflection") == vector_title("synack_reflection") == "SYN-ACK reflection"
    assert format_bps(312e9) == si(312e9, "bps") == units.rate(312e9, "bps") == "312 Gbps"


@needs_pdf_tools
def test_pdf_lists_both_mitigations_and_the_outcome(two_mitigations, build_report, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    report = build_report(ticket=two_mitigations["ticket"], pdf=True)

    assert report.pdf, report.pdf_error
    path = Path(report.pdf.path)
    pages = pdf_pages(path)
    # Reading order (not -layout), so a table cell wrapped over two lines reads as one phrase.
    raw = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    everything = squash(raw)
    assert "Rate-limit UDP from AS64501" in everything
    assert "Drop DNS/NTP reflection to 203.0.113.10" in everything
    assert "True positive, with impact" in everything
    assert "No mitigation was applied" not in everything
    assert "still ongoing" not in everything
    chart_page = next(i for i, page in enumerate(pages, start=1) if "Traffic timeline" in page)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", str(chart_page), "-l", str(chart_page), str(path), str(tmp_path / "p")],
        check=True,
    )
    (png,) = sorted(tmp_path.glob("p*.png"))
    assert colored_pixels(png) > 2000, "the chart page has no coloured chart pixels"

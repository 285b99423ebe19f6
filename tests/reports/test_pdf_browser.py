"""The reports worker's Chromium: started with the first PDF, reused by the next, replaced when it dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from reports import pdf
from tests.reports.test_outputs import needs_pdf_tools, pdf_pages, squash

pytestmark = pytest.mark.django_db


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process we can see."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[int(entry.name)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), name)
    return out


def our_browsers() -> set[int]:
    """The Chromium browser processes started under this test process (renderers excluded)."""
    procs = _processes()

    def ours(pid: int) -> bool:
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = procs.get(pid, (0, ""))[0]
        return False

    def chromium(pid: int) -> bool:
        return pid in procs and procs[pid][1].startswith(("chromium", "chrome"))

    return {pid for pid, (ppid, _) in procs.items() if chromium(pid) and not chromium(ppid) and ours(pid)}


@needs_pdf_tools
def test_reports_share_one_warm_chromium_and_one_that_died_is_replaced(incident, build_report, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    first = build_report(attack=incident["attack"], pdf=True)
    assert first.pdf, first.pdf_error
    launches = pdf._the_browser().launches
    (browser,) = our_browsers()

    second = build_report(attack=incident["attack"], pdf=True)
    assert second.pdf, second.pdf_error
    assert pdf._the_browser().launches == launches and our_browsers() == {browser}

    os.kill(browser, signal.SIGKILL)  # as the OOM killer would
    deadline = time.monotonic() + 10
    while browser in our_browsers() and time.monotonic() < deadline:
        time.sleep(0.05)
    third = build_report(attack=incident["attack"], pdf=True)

    assert third.pdf, third.pdf_error
    assert pdf._the_browser().launches == launches + 1
    assert browser not in our_browsers()
    text = squash(" ".join(pdf_pages(Path(third.pdf.path))))
    assert "Acme Corp" in text and "312 Gbps" in text and "Traffic timeline" in text


@needs_pdf_tools
def test_a_chart_that_cannot_be_drawn_names_the_reason_and_the_next_report_prints(
    incident, build_report, tmp_path, settings, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(pdf, "_DRAW_CHARTS", pdf._DRAW_CHARTS.replace("Plotly.newPlot(", "Plotly.noSuchPlot("))
    broken = build_report(attack=incident["attack"], pdf=True)
    assert broken.status == "done" and not broken.pdf
    assert "charts did not render" in broken.pdf_error and "noSuchPlot" in broken.pdf_error

    monkeypatch.undo()
    fixed = build_report(attack=incident["attack"], pdf=True)
    assert fixed.pdf, fixed.pdf_error

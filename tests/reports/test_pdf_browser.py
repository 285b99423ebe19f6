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


def _descendants(root: int) -> set[int]:
    procs = _processes()
    out, todo = set(), [root]
    while todo:
        parent = todo.pop()
        children = [pid for pid, (ppid, _) in procs.items() if ppid == parent]
        out.update(children)
        todo += children
    return out


def _worker_chromiums(queues: str, tmp_path: Path, wait: float) -> tuple[set[int], str]:
    """Start a real Celery worker of ``queues`` (prefork, one process, the filesystem broker),
    give it ``wait`` seconds after it is ready, and return the Chromium processes under it."""
    import subprocess
    import sys

    from tests.shared import REPO

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BROKER_URL", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        SHIELDWALL_TESTING="1",
        SHIELDWALL_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    log = tmp_path / f"worker-{queues}.log"
    argv = [sys.executable, "-m", "celery", "-A", "console", "worker", "-Q", queues, "-c", "1", "-P", "prefork"]
    argv += ["--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info", "-f", str(log)]
    worker = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "ready." not in (log.read_text() if log.exists() else ""):
            assert worker.poll() is None, log.read_text() if log.exists() else "worker exited"
            time.sleep(0.1)
        assert "ready." in log.read_text()
        found: set[int] = set()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not found:
            procs = _processes()
            found = {pid for pid in _descendants(worker.pid) if procs.get(pid, (0, ""))[1].startswith("chrom")}
            time.sleep(0.2)
        return found, log.read_text()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


@needs_pdf_tools
def test_the_reports_worker_starts_chromium_as_it_starts_and_other_workers_do_not(tmp_path) -> None:
    """The first report after a worker start no longer pays Chromium's start (10 to 28 s under load)."""
    started, log = _worker_chromiums("reports", tmp_path, wait=60)
    assert started, log
    # A worker of other queues (or of all, as runconsole runs one) starts none until a PDF is asked for.
    assert _worker_chromiums("critical,default", tmp_path, wait=5)[0] == set()


def test_only_a_worker_of_the_reports_queue_alone_warms_the_browser(settings) -> None:
    from reports.tasks import warms_report_browser

    settings.REPORT_PDF, settings.REPORT_PDF_WARM = True, True
    assert warms_report_browser({"reports"})
    assert not warms_report_browser({"critical", "default", "analysis", "reports"})
    settings.REPORT_PDF_WARM = False
    assert not warms_report_browser({"reports"})
    settings.REPORT_PDF_WARM, settings.REPORT_PDF = True, False
    assert not warms_report_browser({"reports"})


@needs_pdf_tools
def test_a_warmed_browser_prints_the_first_report_without_starting_another(incident, build_report, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    pdf._stop()
    pdf._browser = None
    done = pdf.warm()
    assert done is not None
    assert done.result(timeout=120) == b""
    launches = pdf._the_browser().launches
    assert launches == 1
    report = build_report(attack=incident["attack"], pdf=True)
    assert report.pdf, report.pdf_error
    assert pdf._the_browser().launches == launches

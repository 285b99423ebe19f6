"""Report PDF benchmark: seconds per customer report, the first one in a process (cold:
Chromium starts) against the next ones (warm: the same browser reused).

    .venv/bin/python bench/reports.py [--reports 5] [--processes 3]

Migrates a SQLite database of its own (bench/out/reports.sqlite3) and seeds the demo data
once (kept between runs), then starts ``--processes`` fresh Python processes, each
generating ``--reports`` reports of First Harbor Bank in turn (its biggest attacks, a
ticket and a 30-day period report), as the reports worker would: figures, HTML and PDF
(``report_generate(pdf=True)``). Each row is one process: its first report, then the
median and the worst of the others, and the PDF part alone (``render_pdf``) of each.

The processes take turns between three starts: ``first PDF`` (Chromium starts under the
first report, as in any process but the reports worker); ``worker, at once`` (``pdf.warm()``
is called as the process starts, as the reports worker's ``worker_process_init`` does, and
the first report is asked for at once, so it waits for whatever of the start is left); and
``worker, ready`` (the same, but the first report comes once the browser is up, as when a
worker started before the report was asked for). ``warm-up s`` is how long the browser took
to be up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DB = OUT / "reports.sqlite3"

ENV = {
    **os.environ,
    "SHIELDWALL_TESTING": "1",
    "DJANGO_SETTINGS_MODULE": "console.settings",
    "DATABASE_URL": f"sqlite:///{DB}",
    "MEDIA_ROOT": str(OUT / "reports-media"),
    "REPORT_PDF": "0",  # the demo seed's own report without a PDF; the bench asks for them
}

SEED = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("seed_demo", verbosity=0)
"""

RUN = """
import json, sys, time
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from alerts.models import Attack
from console.models import Customer
from reports import pdf, services

n = int(sys.argv[1])
warmed = None
if sys.argv[2] in ("at-once", "ready"):
    t0 = time.perf_counter()
    future = pdf.warm()
    future.add_done_callback(lambda f: globals().__setitem__("warmed", time.perf_counter() - t0))
    if sys.argv[2] == "ready":
        future.result()
bank = Customer.objects.get(slug="first-harbor-bank")
attacks = list(Attack.objects.filter(customer=bank, ongoing=False).order_by("-peak_bps", "-id")[: max(1, n - 1)])
spent = []
real = pdf.render_pdf
def timed_pdf(html, **kw):
    t = time.perf_counter()
    try:
        return real(html, **kw)
    finally:
        spent.append(time.perf_counter() - t)
pdf.render_pdf = timed_pdf
rows = []
for i in range(n):
    if i < n - 1:
        report = services.report_request(user=None, attack=attacks[i % len(attacks)], enqueue=False)
    else:
        end = timezone.localdate()
        start = end - timedelta(days=30)
        report = services.report_request(user=None, customer=bank, start=start, end=end, enqueue=False)
    t = time.perf_counter()
    report = services.report_generate(report_id=report.pk, pdf=True)
    total = time.perf_counter() - t
    assert report.pdf, report.pdf_error
    rows.append({"kind": report.kind, "seconds": total, "pdf_seconds": spent[-1], "bytes": report.pdf.size})
print(json.dumps({"rows": rows, "warm_up": warmed}))
"""


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=5, help="reports per process (the last is a period report)")
    ap.add_argument("--processes", type=int, default=3, help="fresh processes, the three starts in turn")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not DB.exists():
        subprocess.run([sys.executable, "-c", SEED], cwd=ROOT, env=ENV, check=True)
    print(f"load average at start: {load()}")
    modes = {"first PDF": "cold", "worker, at once": "at-once", "worker, ready": "ready"}
    firsts: dict[str, list[float]] = {mode: [] for mode in modes}
    warms = []
    head = f"{'process':>7s} {'start':>15s} {'first s':>8s} {'(pdf)':>7s} {'warm-up s':>9s}"
    head += f" {'warm median s':>14s} {'(pdf)':>7s} {'warm max s':>11s}"
    print(f"{head}  kinds")
    for p in range(args.processes):
        mode = list(modes)[p % len(modes)]
        argv = [sys.executable, "-c", RUN, str(args.reports), modes[mode]]
        done = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        out = json.loads(done.stdout.strip().splitlines()[-1])
        rows, warm_up = out["rows"], out["warm_up"]
        first, rest = rows[0], rows[1:]
        firsts[mode].append(first["seconds"])
        warms += [r["seconds"] for r in rest]
        med = statistics.median(r["seconds"] for r in rest) if rest else float("nan")
        med_pdf = statistics.median(r["pdf_seconds"] for r in rest) if rest else float("nan")
        worst = max((r["seconds"] for r in rest), default=float("nan"))
        kinds = ",".join(r["kind"] for r in rows)
        cold = f"{first['seconds']:8.2f} {first['pdf_seconds']:7.2f}"
        warmed = f"{warm_up:9.2f}" if warm_up is not None else f"{'':9s}"
        line = f"{p + 1:7d} {mode:>15s} {cold} {warmed} {med:14.2f} {med_pdf:7.2f} {worst:11.2f}  {kinds}"
        print(line, flush=True)
    for mode, values in firsts.items():
        if values:
            print(f"\nfirst report, {mode}: best {min(values):.2f} s, median {statistics.median(values):.2f} s", end="")
    if warms:
        median = statistics.median(warms)
        print(f"\nlater reports: best {min(warms):.2f} s, median {median:.2f} s, worst {max(warms):.2f} s")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()

"""Traffic benchmark: Shieldwall's PCAP summary and log comparison beside the peers.

    .venv/bin/python bench/traffic.py [--packets 2000000] [--lines 1000000] [--quick] [--logs-only]

Generates bench/out/mixed_<N>.pcap (SYN flood, DNS/NTP/memcached reflection, normal
TLS), bench/out/logpush_<N>.jsonl (baseline requests with a /login bot mixed in) and
bench/out/logpush_baseline_<N>.jsonl (the same requests without the bot, another seed) if
missing, then runs every tool in its own subprocess and prints wall time, CPU time
(user + system, which a busy machine inflates less than wall time), rate and peak RSS
side by side. The log comparison is the attack file against the baseline file (1 M + 1 M
lines), beside DuckDB's own top-N over one of them and a plain read of both files' lines;
and, as the comparison page does it, from the two samples' Parquet files (written once, as
an upload stores them) beside DuckDB's top-N over one of those;
these take turns, round after round. Each figure is the best of ``--repeat`` runs, with
the median beside it (the machines are shared and noisy; ratios within one run are what
to read).

``--memory`` instead prints summarize_pcap's peak RSS on the 2 M-packet capture, a ≈ 4 GB
one (9 M packets) and two spoofed SYN floods (4 M and 16 M packets, a new source address
per packet): file pages are released as the capture is read, and the per-address
tallies are exact only up to ``summary.CAP`` distinct addresses, then keep the heaviest
ones, so peak RSS should stay flat however many sources a capture has.

Peak RSS is what ``/usr/bin/time`` reports: the largest single process. summarize_pcap
reads a classic pcap of 256 MB or more with two processes (a forked child does the second
half), so the summed figure is higher (≈ 250 MB rather than ≈ 195 MB on the 2 M-packet
capture).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
PY = sys.executable
APACHE = REPO.parent / "shared" / "data" / "httplogs" / "apache" / "elastic_examples_apache_logs.gz"

SUMMARY = """
import sys
sys.path.insert(0, {repo!r})
from traffic.parsers.summary import summarize_pcap
s = summarize_pcap({path!r})
print(s["packets"], [v["name"] for v in s["vectors"]])
"""

# What an upload does with a capture (no database): summary, columns to Parquet and, with
# issue 14, the victim-side analysis riding on the column pass.
UPLOAD = """
import sys
sys.path.insert(0, {repo!r})
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("SHIELDWALL_TESTING", "1")
import django
django.setup()
from pathlib import Path
from traffic import services
services._set_progress = lambda *a: None
summary, errors, records = services._parse_pcap(0, Path({path!r}), Path({target!r}))
print(records, [v["name"] for v in summary["vectors"]])
"""

DPKT = """
import dpkt, socket
from collections import Counter
src = Counter(); n = 0
with open({path!r}, "rb") as fh:
    for ts, buf in dpkt.pcap.Reader(fh):
        n += 1
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if isinstance(ip, dpkt.ip.IP):
            src[ip.src] += 1
print(n, len(src))
"""

# Both files are parsed in the timed process (every line, nothing cached between runs),
# the baseline while the attack is read; only the columns a comparison reads are built.
# {before} runs the comparison as it was before issue 20 (every header name flattened).
COMPARE = """
import sys
sys.path.insert(0, {repo!r})
from concurrent.futures import ThreadPoolExecutor
from traffic.parsers import compare as module
from traffic.parsers.httplog import read_logpush
from traffic.parsers.compare import REQUEST_COLUMNS, compare
if {before}:
    module._has_by_order = lambda *args: None
with ThreadPoolExecutor(2) as ex:
    base = ex.submit(read_logpush, {baseline!r}, columns=REQUEST_COLUMNS)
    a = read_logpush({attack!r}, columns=REQUEST_COLUMNS).table
    b = base.result().table
r = compare(a, b)
print(a.num_rows, r["signatures"][0]["expression"] if r["signatures"] else None)
"""

# What the comparison page does (traffic.services.samples_compare): both samples were parsed
# once at upload into Parquet; it reads the compared columns of each and compares.
PARQUET_COMPARE = """
import sys
sys.path.insert(0, {repo!r})
from traffic.parsers.compare import REQUEST_COLUMNS, compare, read_parquet_columns
a = read_parquet_columns({attack_pq!r}, list(REQUEST_COLUMNS))
b = read_parquet_columns({baseline_pq!r}, list(REQUEST_COLUMNS))
r = compare(a, b)
print(a.num_rows, r["signatures"][0]["expression"] if r["signatures"] else None)
"""

# Its peer: DuckDB's top-N over one of those Parquet files (both cores).
DUCKDB_PARQUET_TOPN = """
import duckdb
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute("CREATE VIEW t AS SELECT * FROM read_parquet({attack_pq!r})")
sql = 'SELECT "http.request.uri.path", count(*) AS n FROM t GROUP BY 1 ORDER BY n DESC LIMIT 20'
print(con.execute(sql).fetchall()[0])
"""

# The full import a sample upload does: every column, header values included.
READ_FULL = """
import sys
sys.path.insert(0, {repo!r})
from traffic.parsers.httplog import read_logpush
r = read_logpush({attack!r})
print(r.table.num_rows, len(r.errors))
"""

# The peer: DuckDB's own top-N (its JSON reader, schema guessed, both cores) over one file.
DUCKDB_TOPN = """
import duckdb
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute("SET enable_progress_bar TO false")
sql = "SELECT ClientRequestPath, count(*) AS n FROM read_json_auto({attack!r}) GROUP BY 1 ORDER BY n DESC LIMIT 20"
rows = con.execute(sql).fetchall()
print(rows[0])
"""

LINES = """
n = 0
for path in {paths!r}:
    with open(path, "rb") as fh:
        for _ in fh:
            n += 1
print(n)
"""

ORJSON = """
import orjson
from collections import Counter
keys = ["ClientIP", "ClientASN", "ClientCountry", "ClientRequestHost", "ClientRequestMethod",
        "ClientRequestPath", "ClientRequestUserAgent", "EdgeResponseStatus", "JA3Hash", "JA4"]
counters = {{k: Counter() for k in keys}}
hdr = Counter()
n = 0
with open({attack!r}, "rb") as fh:
    for line in fh:
        r = orjson.loads(line)
        n += 1
        for k in keys:
            counters[k][r.get(k)] += 1
        hdr["|".join(r.get("RequestHeaders") or {{}})] += 1
top = {{k: c.most_common(20) for k, c in counters.items()}}
print(n)
"""


def run_once(cmd: list[str] | str, *, shell: bool = False) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS in MB (from /usr/bin/time -v when present), stdout and CPU seconds."""
    argv = ["bash", "-c", cmd] if shell else list(cmd)
    has_time = Path("/usr/bin/time").exists()
    if has_time:
        argv = ["/usr/bin/time", "-f", "RSS_KB=%M", *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed: {p.stderr[-800:]}")
    # Without /usr/bin/time: the max over all children so far, an upper bound.
    rss = int(p.stderr.strip().rsplit("RSS_KB=", 1)[-1]) / 1024 if has_time else after.ru_maxrss / 1024
    return wall, rss, p.stdout.strip(), cpu


def timed(cmd: list[str] | str, *, shell: bool = False, repeat: int = 1) -> tuple[float, float, str, float, float]:
    """The best run's wall, RSS, stdout and CPU, and the median wall over the runs."""
    runs = [run_once(cmd, shell=shell) for _ in range(max(1, repeat))]
    best = min(runs, key=lambda r: r[0])
    return (*best, statistics.median(r[0] for r in runs))


def ensure_inputs(packets: int, lines: int, *, pcap_too: bool = True) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(REPO))
    from tests.traffic import gen

    OUT.mkdir(parents=True, exist_ok=True)
    pcap = OUT / f"mixed_{packets}.pcap"
    if pcap_too and not pcap.exists():
        t = time.perf_counter()
        gen.write_mixed_capture(pcap, packets)
        print(f"generated {pcap.name} ({pcap.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    attack = OUT / f"logpush_{lines}.jsonl"
    if not attack.exists():
        t = time.perf_counter()
        gen.write_logpush_bench(attack, lines, APACHE)
        print(f"generated {attack.name} ({attack.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    baseline = OUT / f"logpush_baseline_{lines}.jsonl"
    if not baseline.exists():
        t = time.perf_counter()
        gen.write_logpush_bench(baseline, lines, APACHE, seed=5, bot_share=0.0)
        print(f"generated {baseline.name} ({baseline.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    for path in (attack, baseline):
        target = path.with_suffix(".parquet")
        if not target.exists():  # as an upload stores it (traffic.services._parse_log)
            t = time.perf_counter()
            code = (
                f"import sys; sys.path.insert(0, {str(REPO)!r}); import pyarrow.parquet as pq; "
                "from traffic.parsers.httplog import read_logpush; "
                f"pq.write_table(read_logpush({str(path)!r}).table, {str(target)!r}, compression='zstd')"
            )
            subprocess.run([PY, "-c", code], check=True)
            print(f"wrote {target.name} ({target.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    return pcap, attack, baseline


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its descendants now (the PCAP summary forks a second reader)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def tree_peak_rss(cmd: list[str]) -> float:
    """Peak of the summed RSS of ``cmd``'s whole process tree, sampled every 5 ms."""
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _tree_rss_mb(process.pid))
        time.sleep(0.005)
    return peak


def memory_table(packets: int) -> None:
    """Peak RSS of summarize_pcap at two capture sizes (the larger ≈ 4 GB) and on spoofed
    SYN floods, where nearly every packet has a new source address."""
    sys.path.insert(0, str(REPO))
    from tests.traffic import gen

    OUT.mkdir(parents=True, exist_ok=True)
    cases = [(OUT / f"mixed_{n}.pcap", n, gen.write_mixed_capture) for n in (packets, 9_000_000)]
    cases += [(OUT / f"syn_spoofed_{n}.pcap", n, gen.write_spoofed_syn_capture) for n in (4_000_000, 16_000_000)]
    print(f"{'capture':32s} {'MB':>7s} {'seconds':>8s} {'packets/s':>12s} {'peak RSS MB':>12s} {'all processes':>14s}")
    for path, n, write in cases:
        if not path.exists():
            write(path, n)
        cmd = [PY, "-c", SUMMARY.format(repo=str(REPO), path=str(path))]
        wall, rss, _ = run_once(cmd)
        tree = tree_peak_rss(cmd)
        size = path.stat().st_size / 1e6
        print(f"{path.name:32s} {size:7.0f} {wall:8.2f} {n / wall:12,.0f} {rss:12.0f} {tree:14.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100k packets, 100k lines, no tshark fields run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per Shieldwall figure (best is kept)")
    ap.add_argument("--skip-tshark", action="store_true")
    ap.add_argument("--logs-only", action="store_true", help="only the log comparison and its peers")
    ap.add_argument(
        "--memory", action="store_true", help="only the peak-RSS table of summarize_pcap (writes ≈ 6.5 GB of captures)"
    )
    args = ap.parse_args()
    if args.memory:
        memory_table(args.packets)
        return
    if args.quick:
        args.packets, args.lines, args.repeat = 100_000, 100_000, 1
    pcap, attack, baseline = ensure_inputs(args.packets, args.lines, pcap_too=not args.logs_only)
    n = args.packets
    rows: list[tuple[str, float, float, float, float, float, str]] = []
    print(f"load average at start: {load()}")

    def add(name: str, unit_count: int, cmd, *, shell: bool = False, repeat: int = 1) -> None:
        wall, rss, out, cpu, median = timed(cmd, shell=shell, repeat=repeat)
        rows.append((name, wall, median, cpu, unit_count / wall, rss, out.splitlines()[-1][:60] if out else ""))
        print(f"  {name:44s} {wall:8.2f} s", flush=True)

    if not args.logs_only:
        print(f"PCAP: {pcap.name}, {n:,} packets, {pcap.stat().st_size / 1e6:.0f} MB")
        summary = [PY, "-c", SUMMARY.format(repo=str(REPO), path=str(pcap))]
        add("shieldwall summarize_pcap", n, summary, repeat=args.repeat)
        target = OUT / f"{pcap.stem}.parquet"
        upload = UPLOAD.format(repo=str(REPO), path=str(pcap), target=str(target))
        add("shieldwall upload parse (summary+columns+victim)", n, [PY, "-c", upload], repeat=args.repeat)
        target.unlink(missing_ok=True)
        add("dpkt loop (ip.src counter)", n, [PY, "-c", DPKT.format(path=str(pcap))])
        if shutil.which("tshark") and not args.skip_tshark:
            add("tshark -q -z conv,ip", n, ["tshark", "-n", "-q", "-r", str(pcap), "-z", "conv,ip"])
            if not args.quick:
                add(
                    "tshark -T fields -e ip.src | sort | uniq -c",
                    n,
                    f"tshark -n -r {pcap} -T fields -e ip.src | sort | uniq -c > /dev/null",
                    shell=True,
                )
    size = (attack.stat().st_size + baseline.stat().st_size) / 1e6
    print(f"LOGS: {attack.name} + {baseline.name}, {args.lines:,} + {args.lines:,} lines, {size:.0f} MB")
    # The log tools take turns, round after round, so that each sees the same load.
    both = 2 * args.lines
    tools = [
        ("shieldwall read_logpush x2 + compare", both, COMPARE.format(**_logs(attack, baseline), before=False)),
        ("  the same, has-header flattened (before)", both, COMPARE.format(**_logs(attack, baseline), before=True)),
        ("DuckDB top-N (read_json_auto, one file)", args.lines, DUCKDB_TOPN.format(attack=str(attack))),
        ("shieldwall compare from Parquet (the page)", both, PARQUET_COMPARE.format(**_logs(attack, baseline))),
        ("DuckDB top-N (read_parquet, one file)", args.lines, DUCKDB_PARQUET_TOPN.format(**_logs(attack, baseline))),
        ("Python: read the lines of both files", both, LINES.format(paths=[str(attack), str(baseline)])),
    ]
    runs: dict[str, list[tuple[float, float, str, float]]] = {name: [] for name, _, _ in tools}
    for _ in range(max(1, args.repeat)):
        for name, _, code in tools:
            runs[name].append(run_once([PY, "-c", code]))
            print(f"  {name:44s} {runs[name][-1][0]:8.2f} s", flush=True)
    for name, count, _ in tools:
        best = min(runs[name], key=lambda r: r[0])
        median = statistics.median(r[0] for r in runs[name])
        rows.append((name, best[0], median, best[3], count / best[0], best[1], best[2].splitlines()[-1][:60]))
    if not args.logs_only:
        add(
            "shieldwall read_logpush, all columns",
            args.lines,
            [PY, "-c", READ_FULL.format(repo=str(REPO), attack=str(attack))],
            repeat=args.repeat,
        )
        add("orjson + Counter (top-20 of 10 attributes)", args.lines, [PY, "-c", ORJSON.format(attack=str(attack))])

    print()
    head = f"{'tool':46s} {'best s':>8s} {'median s':>9s} {'CPU s':>7s} {'units/s':>12s} {'peak RSS MB':>12s}"
    print(f"{head}  output")
    for name, wall, median, cpu, rate, rss, out in rows:
        print(f"{name:46s} {wall:8.2f} {median:9.2f} {cpu:7.2f} {rate:12,.0f} {rss:12.0f}  {out}")
    print(f"\n(os.cpu_count() = {os.cpu_count()}; packets/s for PCAP rows, rows/s for log rows)")
    print(f"load average at end: {load()}")


def _logs(attack: Path, baseline: Path) -> dict[str, str]:
    return {
        "repo": str(REPO),
        "attack": str(attack),
        "baseline": str(baseline),
        "attack_pq": str(attack.with_suffix(".parquet")),
        "baseline_pq": str(baseline.with_suffix(".parquet")),
    }


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()

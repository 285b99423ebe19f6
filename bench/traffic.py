"""Traffic benchmark: Shieldwall's PCAP summary and log comparison beside the peers.

    .venv/bin/python bench/traffic.py [--packets 2000000] [--lines 1000000] [--quick]

Generates bench/out/mixed_<N>.pcap (SYN flood, DNS/NTP/memcached reflection, normal
TLS) and bench/out/logpush_<N>.jsonl (baseline requests with a /login bot mixed in) if
missing, then runs every tool in its own subprocess and prints wall time, rate and
peak RSS side by side. Each figure is the best of ``--repeat`` runs (the machines are
shared and noisy; ratios within one run are what to read).

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
# the small baseline while the attack is read; only the columns a comparison reads are built.
COMPARE = """
import sys
sys.path.insert(0, {repo!r})
from concurrent.futures import ThreadPoolExecutor
from traffic.parsers.httplog import read_logpush
from traffic.parsers.compare import REQUEST_COLUMNS, compare
with ThreadPoolExecutor(2) as ex:
    base = ex.submit(read_logpush, {baseline!r}, columns=REQUEST_COLUMNS)
    a = read_logpush({attack!r}, columns=REQUEST_COLUMNS).table
    b = base.result().table
r = compare(a, b)
print(a.num_rows, r["signatures"][0]["expression"] if r["signatures"] else None)
"""

# The full import a sample upload does: every column, header values included.
READ_FULL = """
import sys
sys.path.insert(0, {repo!r})
from traffic.parsers.httplog import read_logpush
r = read_logpush({attack!r})
print(r.table.num_rows, len(r.errors))
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


def run_once(cmd: list[str] | str, *, shell: bool = False) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (from /usr/bin/time -v when present) and stdout."""
    argv = ["bash", "-c", cmd] if shell else list(cmd)
    has_time = Path("/usr/bin/time").exists()
    if has_time:
        argv = ["/usr/bin/time", "-f", "RSS_KB=%M", *argv]
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed: {p.stderr[-800:]}")
    if has_time:
        rss = int(p.stderr.strip().rsplit("RSS_KB=", 1)[-1]) / 1024
    else:  # max over all children so far: an upper bound
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, rss, p.stdout.strip()


def timed(cmd: list[str] | str, *, shell: bool = False, repeat: int = 1) -> tuple[float, float, str]:
    runs = [run_once(cmd, shell=shell) for _ in range(max(1, repeat))]
    return min(runs, key=lambda r: r[0])


def ensure_inputs(packets: int, lines: int) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(REPO))
    from tests.traffic import gen

    OUT.mkdir(parents=True, exist_ok=True)
    pcap = OUT / f"mixed_{packets}.pcap"
    if not pcap.exists():
        t = time.perf_counter()
        gen.write_mixed_capture(pcap, packets)
        print(f"generated {pcap.name} ({pcap.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    attack = OUT / f"logpush_{lines}.jsonl"
    if not attack.exists():
        t = time.perf_counter()
        gen.write_logpush_bench(attack, lines, APACHE)
        print(f"generated {attack.name} ({attack.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    baseline = OUT / "logpush_baseline.jsonl"
    if not baseline.exists():
        gen.write_jsonl(baseline, gen.baseline_records(gen.apache_lines(APACHE)))
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
    ap.add_argument(
        "--memory", action="store_true", help="only the peak-RSS table of summarize_pcap (writes ≈ 6.5 GB of captures)"
    )
    args = ap.parse_args()
    if args.memory:
        memory_table(args.packets)
        return
    if args.quick:
        args.packets, args.lines, args.repeat = 100_000, 100_000, 1
    pcap, attack, baseline = ensure_inputs(args.packets, args.lines)
    n = args.packets
    rows: list[tuple[str, float, float, float, str]] = []

    def add(name: str, unit_count: int, cmd, *, shell: bool = False, repeat: int = 1) -> None:
        wall, rss, out = timed(cmd, shell=shell, repeat=repeat)
        rows.append((name, wall, unit_count / wall, rss, out.splitlines()[-1][:60] if out else ""))
        print(f"  {name:44s} {wall:8.2f} s", flush=True)

    print(f"PCAP: {pcap.name}, {n:,} packets, {pcap.stat().st_size / 1e6:.0f} MB")
    add("shieldwall summarize_pcap", n, [PY, "-c", SUMMARY.format(repo=str(REPO), path=str(pcap))], repeat=args.repeat)
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
    print(f"LOGS: {attack.name}, {args.lines:,} lines, {attack.stat().st_size / 1e6:.0f} MB (vs 10k baseline)")
    add(
        "shieldwall read_logpush x2 + compare",
        args.lines,
        [PY, "-c", COMPARE.format(repo=str(REPO), attack=str(attack), baseline=str(baseline))],
        repeat=args.repeat,
    )
    add(
        "shieldwall read_logpush, all columns",
        args.lines,
        [PY, "-c", READ_FULL.format(repo=str(REPO), attack=str(attack))],
        repeat=args.repeat,
    )
    add("orjson + Counter (top-20 of 10 attributes)", args.lines, [PY, "-c", ORJSON.format(attack=str(attack))])

    print()
    print(f"{'tool':46s} {'seconds':>9s} {'units/s':>12s} {'peak RSS MB':>12s}  output")
    for name, wall, rate, rss, out in rows:
        print(f"{name:46s} {wall:9.2f} {rate:12,.0f} {rss:12.0f}  {out}")
    print(f"\n(os.cpu_count() = {os.cpu_count()}; packets/s for PCAP rows, rows/s for log rows)")


if __name__ == "__main__":
    main()

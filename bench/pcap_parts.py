"""PCAP analysis in 1, 2 and 4 parts (traffic/parts.py), each part in its own process.

    .venv/bin/python bench/pcap_parts.py [--packets 1000000] [--parts 1,2,4] [--records] [--repeat 2]

Uses bench/out/mixed_<N>.pcap (generated as bench/traffic.py does when missing). Each part
runs in a separate process, as separate Celery workers of the analysis queue would, and the
states are merged in this one; the wall time covers cutting, all parts and the merge. Every
merged summary is checked against the single pass. With ``--records`` each part also writes
its Parquet records (what the console stores), concatenated after the merge. Parts beyond
the machine's cores only add the merge: read the figures against ``os.cpu_count()``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("SHIELDWALL_TESTING", "1")


def _part(args: tuple) -> object:
    from traffic.parts import analyse_range

    path, start, stop, last, records = args
    return analyse_range(path, start, stop, last=last, records=Path(records) if records else None)


def run(path: Path, parts: int, *, records: bool, folder: Path) -> tuple[float, dict]:
    from traffic.parts import _concat_records, merge, plan

    started = time.perf_counter()
    ranges = plan(path, parts)
    jobs = [
        (str(path), a, b, i == len(ranges) - 1, str(folder / f"p{i}.parquet") if records else "")
        for i, (a, b) in enumerate(ranges)
    ]
    with ProcessPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(_part, jobs))
    merged = merge(results, ranges)
    assert merged is not None, "a boundary was no record start"
    summary, used = merged
    if records:
        _concat_records([folder / f"p{i}.parquet" for i in range(used)], folder / "all.parquet")
    return time.perf_counter() - started, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--parts", default="1,2,4")
    ap.add_argument("--records", action="store_true", help="also write and concatenate the Parquet records")
    ap.add_argument("--repeat", type=int, default=2, help="runs per figure (best is kept)")
    args = ap.parse_args()

    import django

    django.setup()  # traffic.parts holds the task wiring too; the parts fork from here

    from tests.traffic import gen
    from traffic.parsers.summary import summarize_pcap

    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"mixed_{args.packets}.pcap"
    if not path.exists():
        gen.write_mixed_capture(path, args.packets)
    single = summarize_pcap(path, split_min_bytes=1 << 62)
    size_mb = path.stat().st_size / 1e6
    print(f"{path.name}: {size_mb:.0f} MB, {single['packets']:,} packets, {os.cpu_count()} cores")
    print(f"{'parts':>5} {'seconds':>8} {'Mpkt/s':>7} {'same as one pass':>17}")
    for n in (int(x) for x in args.parts.split(",")):
        best, summary = float("inf"), None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                seconds, summary = run(path, n, records=args.records, folder=Path(tmp))
            best = min(best, seconds)
        print(f"{n:>5} {best:>8.2f} {single['packets'] / best / 1e6:>7.2f} {str(summary == single):>17}")


if __name__ == "__main__":
    main()

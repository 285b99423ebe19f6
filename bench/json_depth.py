"""What the webhook's JSON depth check costs beside the parse it protects.

    .venv/bin/python bench/json_depth.py [--alerts 500] [--runs 200]

Builds an Alertmanager v4 notification of N alerts (alerts/formats/examples.py), then times,
median of the runs: the depth scan (``depth_error`` at INGEST_MAX_JSON_DEPTH's default),
``orjson.loads`` of the body (what the webhook's well-formedness check already pays), and the
full Alertmanager parse the worker does. Also the scan of two hostile bodies of 1 MiB: a
bracket bomb, and a body that is all short strings. Plain Python, no database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from alerts.formats import examples, parse_delivery, refused_records
from alerts.formats.limits import DEFAULT_MAX_JSON_DEPTH, depth_error, json_depth


def median_ms(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    alerts = [
        examples.alertmanager_alert(target_ip=f"203.0.{n // 250}.{n % 250}", fingerprint=f"{n:016x}")
        for n in range(args.alerts)
    ]
    body = examples.body(examples.alertmanager_notification(*alerts))
    assert json_depth(body) < DEFAULT_MAX_JSON_DEPTH
    payload = orjson.loads(body)
    bomb = b"[" * (1 << 19) + b"]" * (1 << 19)
    strings = b"[" + b",".join([b'"[{x}]"'] * (1 << 17)) + b"]"
    rows = [
        (f"depth scan, {args.alerts}-alert delivery", len(body), lambda: depth_error(body, DEFAULT_MAX_JSON_DEPTH)),
        ("orjson.loads of it (the webhook's JSON check)", len(body), lambda: orjson.loads(body)),
        ("its refused-alerts check (the webhook)", len(body), lambda: refused_records("alertmanager", payload, body)),
        ("full Alertmanager parse (the worker)", len(body), lambda: parse_delivery("alertmanager", body)),
        ("depth scan, 1 MiB bracket bomb", len(bomb), lambda: depth_error(bomb, DEFAULT_MAX_JSON_DEPTH)),
        ("depth scan, 1 MiB of short strings", len(strings), lambda: depth_error(strings, DEFAULT_MAX_JSON_DEPTH)),
    ]
    print(f"{'step':<48} {'bytes':>10} {'median ms':>10}")
    results = {}
    for name, size, step in rows:
        results[name] = median_ms(step, args.runs if size < 2_000_000 else 20)
        print(f"{name:<48} {size:>10,} {results[name]:>10.3f}")
    scan, parse = results[rows[0][0]], results[rows[3][0]]
    print(f"depth scan / full parse: {scan / parse:.1%}; depth scan / orjson.loads: {scan / results[rows[1][0]]:.1%}")


if __name__ == "__main__":
    main()

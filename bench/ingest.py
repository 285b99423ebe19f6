"""Ingestion benchmark: webhook -> Redis -> real Celery worker -> PostgreSQL, beside a naive INSERT loop.

    .venv/bin/python bench/ingest.py [--alerts 100000] [--batch 500] [--single 2000]

Runs against PostgreSQL and Redis on this machine (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/shieldwall_bench, dropped and created afresh; REDIS_URL,
default redis://127.0.0.1:6379/5, flushed). It migrates, seeds customers with prefixes and a
push feed, then starts gunicorn (``console.wsgi``, DEBUG=0) and a Celery worker
(``-Q critical,default -c 2``, CELERY_TASK_ALWAYS_EAGER=0) as subprocesses, and measures:

(a) batched: N alerts posted as N/B deliveries of B alerts (Suricata EVE lines, every alert
    its own fingerprint) by ``--clients`` concurrent senders; end-to-end alerts/s from the first
    POST to the moment every delivery is processed and the feed has N alerts (polled in the DB);
(b) single: M one-alert deliveries posted one after the other; the webhook's response latency
    as the client sees it (connect + request + 202), p50/p95/p99, and the time until all are
    processed;
(b2) single, concurrent: M one-alert deliveries by ``--single-clients`` senders at once, end to
    end (what the worker's micro-batching is for) with the webhook's latency;
(c) the limits: the same N alert rows COPYed (one transaction per delivery) into a scratch
    table shaped like alerts_alert, and COPYed into a temp staging table followed by one
    INSERT ... SELECT ... ON CONFLICT per delivery: what the database itself can write, printed
    above the end-to-end figure;
(d) baseline: the same N alert rows written by a plain single-row INSERT loop, one INSERT and
    one commit per alert (psycopg2, autocommit), into a scratch table of the same shape
    (``LIKE alerts_alert INCLUDING ALL``: same columns, indexes, partial unique key).

Targets (issue 3): >= 5,000 alerts/s sustained on 2 cores; p99 webhook response <= 25 ms.
The machines are shared and noisy: read ratios within one run before absolute figures.
Logs of the web server and worker go to bench/out/ingest-logs/; the processes are stopped
at the end, the database is left for inspection.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # after the path that makes bench importable as a script
    REPO,
    Probe,
    Service,
    console_env,
    eve_bodies,
    free_port,
    post,
    queue_idle,
    recreate_database,
    seed,
    wait_for,
    web_service,
    webhook_answers,
    worker_service,
)

OUT = REPO / "bench" / "out"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/shieldwall_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"
TARGET_ALERTS_PER_S = 5_000
TARGET_P99_MS = 25.0


# --------------------------------------------------------------------------- measuring


def post_all(port: int, path: str, token: str, bodies: list[bytes], clients: int) -> list[float]:
    """Post every body with ``clients`` concurrent senders; every answer must be 202."""
    latencies: list[float] = [0.0] * len(bodies)
    errors: list[str] = []
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None or errors:
                return
            status, _answer, seconds = post(port, path, token, bodies[index])
            if status != 202:
                errors.append(f"delivery {index}: HTTP {status}")
            latencies[index] = seconds

    threads = [threading.Thread(target=sender) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit("; ".join(errors[:5]))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class CpuMeter:
    """CPU seconds used by each part of the system between two snapshots (Linux /proc)."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, services: list[Service], database: str) -> None:
        self.services = services
        self.database = database

    def _classify(self, pid: int, cmdline: str, pgid: int) -> str | None:
        for service in self.services:
            if service.process is not None and pgid == service.process.pid:
                return service.name
        if cmdline.startswith("postgres:"):
            if f" {self.database} " in cmdline:
                return "postgres (bench backends)"
            if not any(word in cmdline for word in (" idle", " SELECT", " INSERT", " UPDATE", " COPY", " DELETE")):
                return "postgres (wal, checkpointer, vacuum)"
            return None  # another database's backend: someone else's work on this machine
        if "bin/postgres" in cmdline and " -D " in cmdline:
            # The postmaster reaps backends that exit (a Celery task closes its connection):
            # their CPU lands in its children's times, whatever database they served.
            return "postgres (exited backends)"
        if cmdline.startswith("redis-server"):
            return "redis"
        if pid == os.getpid():
            return "bench client"
        return None

    def snapshot(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            pgid, utime, stime = int(fields[2]), int(fields[11]), int(fields[12])
            kind = self._classify(int(entry.name), cmdline, pgid)
            if kind == "postgres (exited backends)":
                found[int(entry.name)] = (kind, (int(fields[13]) + int(fields[14])) / self.TICK)
            elif kind:
                found[int(entry.name)] = (kind, (utime + stime) / self.TICK)
        return found

    @staticmethod
    def delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
        used: dict[str, float] = {}
        for pid, (kind, seconds) in after.items():
            used[kind] = used.get(kind, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
        return dict(sorted(used.items(), key=lambda kv: -kv[1]))


@dataclass
class Row:
    method: str
    alerts: int
    seconds: float
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds else float("nan")


# --------------------------------------------------------------------------- baseline


def baseline_rows(bodies: list[bytes], feed_id: int, customers: dict[str, int]) -> list[tuple]:
    """The same alerts as rows of alerts_alert (the columns the upsert writes), built untimed."""
    import orjson

    from alerts.formats import parse_delivery

    now = datetime.now(UTC)
    rows = []
    for body in bodies:
        for alert in parse_delivery("suricata", body).alerts:
            network = str(ipaddress.ip_network(f"{alert.target_ip}/24", strict=False))
            rows.append(
                (
                    feed_id,
                    customers.get(network),
                    alert.external_id[:200],
                    alert.fingerprint,
                    alert.title[:500],
                    alert.description,
                    alert.layer,
                    alert.vector[:64],
                    alert.severity,
                    alert.target_ip or None,
                    alert.target_port,
                    alert.target_host,
                    alert.zone,
                    alert.pps,
                    alert.bps,
                    alert.rps,
                    alert.packets,
                    alert.bytes,
                    orjson.dumps(alert.source_ips[:100]).decode(),
                    orjson.dumps(alert.source_asns[:100]).decode(),
                    orjson.dumps(alert.source_countries[:100]).decode(),
                    orjson.dumps(alert.labels).decode(),
                    orjson.dumps(alert.raw, default=str).decode(),
                    alert.event_time or now,
                    now,
                    now,
                    1,
                    "new",
                    "",
                    0,
                    "[]",
                    now,
                    alert.direction_rule[:300],
                )
            )
    return rows


BASELINE_SQL = """
INSERT INTO bench_alert_baseline (
    feed_id, customer_id, external_id, fingerprint, title, description, layer, vector, severity,
    target_ip, target_port, target_host, zone, pps, bps, rps, packets, bytes,
    source_ips, source_asns, source_countries, labels, raw, event_time, first_seen, last_seen,
    count, status, outcome, urgency, urgency_reasons, updated_at, direction_rule
) VALUES (
    %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::inet, %s, %s, %s, %s, %s, %s, %s, %s,
    %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s
)
"""


def run_baseline(url: str, rows: list[tuple]) -> float:
    """One INSERT and one commit per alert (autocommit): what a naive webhook -> task -> save() does."""
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_alert_baseline")
        cursor.execute("CREATE TABLE bench_alert_baseline (LIKE alerts_alert INCLUDING ALL)")
        started = time.perf_counter()
        for row in rows:
            cursor.execute(BASELINE_SQL, row)
        seconds = time.perf_counter() - started
        cursor.execute("SELECT count(*) FROM bench_alert_baseline")
        assert cursor.fetchone()[0] == len(rows)
    connection.close()
    return seconds


BASELINE_COLUMNS = [c.strip() for c in BASELINE_SQL.split("(", 1)[1].split(")", 1)[0].split(",")]


def run_write_limits(url: str, rows: list[tuple], batch: int) -> tuple[float, float]:
    """The database's own write limits for the same rows, one transaction per delivery of ``batch``.

    (i) COPY straight into a scratch table shaped like alerts_alert (its indexes and partial
    unique key included); (ii) COPY into a temp staging table and one INSERT ... SELECT ...
    ON CONFLICT into the scratch table, the statement pair the write path runs per delivery.
    Returns the seconds of each.
    """
    import psycopg2

    from alerts.pgcopy import copy_text

    columns = ", ".join(BASELINE_COLUMNS)
    connection = psycopg2.connect(url)
    timings = []
    with connection.cursor() as cursor:
        for staged in (False, True):
            cursor.execute("DROP TABLE IF EXISTS bench_alert_limit")
            cursor.execute("CREATE TABLE bench_alert_limit (LIKE alerts_alert INCLUDING ALL)")
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS bench_alert_staging ON COMMIT DELETE ROWS AS "
                f"SELECT {columns} FROM alerts_alert WITH NO DATA"
            )
            connection.commit()
            started = time.perf_counter()
            for index in range(0, len(rows), batch):
                payload = copy_text(rows[index : index + batch])
                if not staged:
                    cursor.copy_expert(f"COPY bench_alert_limit ({columns}) FROM STDIN", payload)
                else:
                    cursor.copy_expert(f"COPY bench_alert_staging ({columns}) FROM STDIN", payload)
                    cursor.execute(
                        f"INSERT INTO bench_alert_limit AS a ({columns}) SELECT {columns} FROM bench_alert_staging "
                        "ON CONFLICT (feed_id, fingerprint) WHERE resolved_at IS NULL DO UPDATE SET "
                        "count = a.count + excluded.count, last_seen = GREATEST(a.last_seen, excluded.last_seen), "
                        "updated_at = excluded.updated_at RETURNING id, count, fingerprint, attack_id"
                    )
                    cursor.fetchall()
                connection.commit()
            timings.append(time.perf_counter() - started)
            cursor.execute("SELECT count(*) FROM bench_alert_limit")
            assert cursor.fetchone()[0] == len(rows)
    connection.close()
    return timings[0], timings[1]


# --------------------------------------------------------------------------- main


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    def ms(value: float | None) -> str:
        return f"{value * 1000:.1f}" if value is not None else "-"

    header = f"{'method':<46} {'alerts':>8} {'seconds':>8} {'alerts/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.method:<46} {row.alerts:>8} {row.seconds:>8.2f} {row.rate:>9,.0f} "
            f"{ms(row.p50):>7} {ms(row.p95):>7} {ms(row.p99):>7}" + (f"  {row.note}" if row.note else "")
        )
    print()
    print(f"load average (1 min) at start / end: {args.load_start:.1f} / {os.getloadavg()[0]:.1f}")
    print(
        f"targets: >= {TARGET_ALERTS_PER_S:,} alerts/s batched end to end; p99 webhook response <= "
        f"{TARGET_P99_MS:.0f} ms (gunicorn -w {args.web_workers}, celery -c {args.concurrency}, "
        f"{os.cpu_count()} cores, PostgreSQL and Redis on the same machine)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts in the batched run (N)")
    parser.add_argument("--batch", type=int, default=500, help="alerts per batched delivery (B)")
    parser.add_argument("--single", type=int, default=2_000, help="one-alert deliveries in the latency run (M)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent senders in the batched run")
    parser.add_argument(
        "--single-clients", type=int, default=8, help="concurrent one-alert senders in (b2); 0 leaves it out"
    )
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker processes")
    parser.add_argument("--skip-baseline", action="store_true", help="leave out (d), the INSERT loop")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for a run to be processed")
    args = parser.parse_args()
    args.load_start = os.getloadavg()[0]

    OUT.mkdir(parents=True, exist_ok=True)
    env = console_env(database_url=args.database_url, redis_url=args.redis_url, var_dir=OUT / "ingest-var")
    os.environ.update(env)
    print(f"database {args.database_url} (recreated), redis {args.redis_url} (flushed)", flush=True)
    recreate_database(args.database_url)
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)

    import django

    django.setup()
    from django.db import connections

    batch_slug, single_slug, warm_slug = "bench-batched", "bench-single", "bench-warmup"
    concurrent_slug = "bench-single-concurrent"
    tokens = seed(batch_slug, single_slug, warm_slug, concurrent_slug)
    from console.models import Asset

    customers = {value: cid for cid, value in Asset.objects.filter(kind="prefix").values_list("customer_id", "value")}
    connections.close_all()

    print(f"building {args.alerts:,} batched + {args.single:,} single + warm-up alerts ...", flush=True)
    batched = eve_bodies(args.alerts, args.batch, first_source=0)
    singles = eve_bodies(args.single, 1, first_source=args.alerts)
    warm = eve_bodies(60, 1, first_source=args.alerts + args.single)
    concurrent = eve_bodies(args.single, 1, first_source=args.alerts + args.single + 60)

    port = free_port()
    web = web_service(port=port, env=env, log_dir=OUT / "ingest-logs", workers=args.web_workers)
    worker = worker_service(name="bench-ingest", env=env, log_dir=OUT / "ingest-logs", concurrency=args.concurrency)
    services = [web, worker]
    probe = Probe(args.database_url)
    idle = queue_idle(args.redis_url)
    results: list[Row] = []
    meter = CpuMeter(services, urlsplit(args.database_url).path.lstrip("/"))
    cpu: dict[str, float] = {}
    try:
        for service in services:
            service.start()

        wait_for("the web server", lambda: webhook_answers(port, warm_slug), 60, services)
        # Warm up every gunicorn worker and the Celery pool, then let the queue drain.
        warm_id = probe.feed_id(warm_slug)
        post_all(port, f"/ingest/{warm_slug}/", tokens[warm_slug], warm, clients=3)
        wait_for("the warm-up deliveries", lambda: probe.done(warm_id, len(warm), len(warm)), 120, services)
        wait_for("an idle worker", idle, 120, services, step=0.2)

        # (a) batched
        feed_id = probe.feed_id(batch_slug)
        print(f"(a) posting {len(batched)} deliveries of {args.batch} alerts ...", flush=True)
        cpu_before = meter.snapshot()
        started = time.perf_counter()
        latencies = post_all(port, f"/ingest/{batch_slug}/", tokens[batch_slug], batched, args.clients)
        accepted = time.perf_counter() - started
        finished = wait_for(
            "the batched deliveries to be processed",
            lambda: probe.done(feed_id, len(batched), args.alerts),
            args.timeout,
            services,
        )
        cpu = meter.delta(cpu_before, meter.snapshot())
        cpu["wall"] = finished - started
        results.append(
            Row(
                f"shieldwall batched ({args.batch}/delivery), end to end",
                args.alerts,
                finished - started,
                note=f"{len(batched)} deliveries, {args.clients} senders",
            )
        )
        results.append(
            Row(
                f"  webhook accept only ({args.batch}/delivery)",
                args.alerts,
                accepted,
                percentile(latencies, 50),
                percentile(latencies, 95),
                percentile(latencies, 99),
            )
        )
        drained = wait_for("the worker to drain (attack summaries)", idle, args.timeout, services, step=0.2)
        print(f"    worker idle {drained - finished:.1f}s after the last alert was stored", flush=True)

        # (b) single
        feed_id = probe.feed_id(single_slug)
        print(f"(b) posting {len(singles)} one-alert deliveries one after the other ...", flush=True)
        started = time.perf_counter()
        path, token = f"/ingest/{single_slug}/", tokens[single_slug]
        answers = [post(port, path, token, body) for body in singles]
        if any(status != 202 for status, _answer, _seconds in answers):
            raise SystemExit(f"single deliveries answered {sorted({status for status, _, _ in answers})}")
        latencies = [seconds for _status, _answer, seconds in answers]
        finished = wait_for(
            "the single deliveries to be processed",
            lambda: probe.done(feed_id, len(singles), args.single),
            args.timeout,
            services,
        )
        results.append(
            Row(
                "shieldwall single (1/delivery), sequential",
                args.single,
                finished - started,
                percentile(latencies, 50),
                percentile(latencies, 95),
                percentile(latencies, 99),
                note="latency = client-side webhook response",
            )
        )
        wait_for("the worker to drain", idle, args.timeout, services, step=0.2)

        # (b2) single-alert senders side by side: what micro-batching in the worker is for
        if args.single_clients:
            feed_id = probe.feed_id(concurrent_slug)
            print(
                f"(b2) posting {len(concurrent)} one-alert deliveries by {args.single_clients} senders ...", flush=True
            )
            started = time.perf_counter()
            latencies = post_all(
                port, f"/ingest/{concurrent_slug}/", tokens[concurrent_slug], concurrent, args.single_clients
            )
            finished = wait_for(
                "the concurrent single deliveries to be processed",
                lambda: probe.done(feed_id, len(concurrent), len(concurrent)),
                args.timeout,
                services,
            )
            results.append(
                Row(
                    f"shieldwall single (1/delivery), {args.single_clients} senders",
                    len(concurrent),
                    finished - started,
                    percentile(latencies, 50),
                    percentile(latencies, 95),
                    percentile(latencies, 99),
                    note="end to end; latency = client-side webhook response",
                )
            )
            wait_for("the worker to drain", idle, args.timeout, services, step=0.2)
    finally:
        for service in services:
            service.stop()

    # (c) the database's own limits and the baseline, with the web server and worker stopped
    # (they get the whole machine).
    rows = baseline_rows(batched, probe.feed_id(batch_slug), customers)
    print(f"(c) COPY limit and upsert limit, {len(rows):,} rows in transactions of {args.batch} ...", flush=True)
    copy_s, upsert_s = run_write_limits(args.database_url, rows, args.batch)
    results.insert(0, Row(f"limit: COPY into alerts_alert's shape ({args.batch}/tx)", len(rows), copy_s))
    results.insert(1, Row(f"limit: COPY staging + INSERT..ON CONFLICT ({args.batch}/tx)", len(rows), upsert_s))
    if not args.skip_baseline:
        print(f"(d) single-row INSERT loop, {args.alerts:,} rows, one commit each ...", flush=True)
        seconds = run_baseline(args.database_url, rows)
        results.append(Row("baseline: INSERT + commit per alert (psycopg2)", len(rows), seconds))
    probe.close()
    print_table(results, args)
    if cpu:
        wall = cpu.pop("wall")
        parts = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in cpu.items())
        total = sum(cpu.values())
        print(f"CPU seconds during (a), {wall:.1f} s wall on {os.cpu_count()} cores: {parts}; total {total:.1f}")


if __name__ == "__main__":
    main()

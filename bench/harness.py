"""The pieces the ingest benchmark and the chaos suite share: real processes and real senders.

Both start the console's web server and Celery worker as subprocesses against a real
PostgreSQL and Redis, post Suricata EVE deliveries to the webhook the way a sender does,
and read the outcome straight from the database. Django is imported only inside the
functions that need it, with the settings of the process that calls them.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CUSTOMERS = 20  # each with a /24 in 198.18.0.0/15 (the benchmarking range) and a zone
TARGETS_PER_CUSTOMER = 5  # attacked addresses per customer: 100 targets in all
# Intrusion signatures: one alert per (rule, attacker, victim, service), so every event from
# its own source is its own alert. (A DoS signature is one alert per victim whatever its
# sources, which would fold the benchmark's events into a few rows.)
SIGNATURES = [
    (2_100_001, "ET SCAN Potential SSH Brute Force Inbound", "TCP", 22, "Attempted Information Leak"),
    (
        2_100_002,
        "ET EXPLOIT Possible Apache log4j RCE Attempt Inbound",
        "TCP",
        443,
        "Attempted Administrator Privilege Gain",
    ),
    (2_100_003, "ET WEB_SERVER Possible SQL Injection Attempt Inbound", "TCP", 80, "Web Application Attack"),
    (2_100_004, "ET POLICY Suspicious inbound to MSSQL port 1433", "TCP", 1433, "Potentially Bad Traffic"),
]


def console_env(*, database_url: str, redis_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """What the web server, the worker and beat run with: production-like, no eager tasks."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "SHIELDWALL_TESTING": "0",
        "SECRET_KEY": "shieldwall-harness-not-a-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "SHIELDWALL_VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
        **extra,
    }


def recreate_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an odd database name {name!r}")
    admin = psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A process of ours (or a server) started in its own session, so it can be killed by its own id."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    user: str | None = None
    process: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            # Its own session: stopping it stops its forked children too, and nothing else.
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.user,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group and wait for the leader to go."""
        if not self.running:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        self.process.wait(timeout=60)
        if sig == signal.SIGKILL:
            return
        # Forked children that outlived their parent (a warm shutdown that hung).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        if not self.running:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def web_service(*, port: int, env: dict[str, str], log_dir: Path, workers: int = 3) -> Service:
    argv = [
        str(BIN / "gunicorn"),
        "console.wsgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--log-level=warning",
        "--timeout=120",
    ]
    return Service("web", argv, env, log_dir)


def worker_service(*, name: str, env: dict[str, str], log_dir: Path, concurrency: int = 2) -> Service:
    argv = [
        str(BIN / "celery"),
        "-A",
        "console",
        "worker",
        "-Q",
        "critical,default",
        "-c",
        str(concurrency),
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{name}-{os.getpid()}@%h",
    ]
    return Service(name, argv, env, log_dir)


def beat_service(*, env: dict[str, str], log_dir: Path) -> Service:
    argv = [str(BIN / "celery"), "-A", "console", "beat", "--loglevel=WARNING"]
    return Service("beat", argv, env, log_dir)


def wait_for(what: str, check: Callable[[], bool], timeout: float, services: list[Service], step=0.05) -> float:
    """Poll until ``check()``; returns when it held (perf_counter). Fails after ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while True:
        if check():
            return time.perf_counter()
        for service in services:
            service.check()
        if time.perf_counter() > deadline:
            raise SystemExit(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def webhook_answers(port: int, slug: str) -> bool:
    """The web server is up: the webhook refuses a wrong token with 401."""
    try:
        return post(port, f"/ingest/{slug}/", "wrong", b"{}")[0] == 401
    except OSError:
        return False


# --------------------------------------------------------------------------- payloads


def seed(*feed_slugs: str) -> dict[str, str]:
    """Customers with prefixes (so every alert is mapped to one) and push feeds; their tokens."""
    from alerts.models import Feed
    from console.models import Asset, Customer

    for k in range(CUSTOMERS):
        customer, created = Customer.objects.get_or_create(
            slug=f"bench-{k}", defaults={"name": f"Bench customer {k}", "plan": "business"}
        )
        if created:
            Asset.objects.create(customer=customer, kind=Asset.Kind.PREFIX, value=f"198.18.{k}.0/24")
            Asset.objects.create(customer=customer, kind=Asset.Kind.ZONE, value=f"bench-{k}.example")
    tokens = {}
    for slug in feed_slugs:
        feed = Feed(name=slug, slug=slug, format=Feed.Format.SURICATA, rate_limit_per_minute=10_000_000)
        tokens[slug] = feed.set_secret()
        feed.save()
    return tokens


def eve_bodies(count: int, batch: int, first_source: int) -> list[bytes]:
    """``count`` Suricata alert events, ``batch`` to a delivery; each a distinct fingerprint."""
    from alerts.formats import examples

    base = datetime.now(UTC) - timedelta(minutes=5)
    sources = ipaddress.IPv4Address("100.64.0.0") + first_source
    bodies = []
    for start in range(0, count, batch):
        events = []
        for i in range(start, min(start + batch, count)):
            sid, signature, proto, port, category = SIGNATURES[i % len(SIGNATURES)]
            customer = (i // len(SIGNATURES)) % CUSTOMERS
            events.append(
                examples.suricata_alert(
                    signature=signature,
                    signature_id=sid,
                    category=category,
                    src_ip=str(sources + i),
                    src_port=1024 + i % 60_000,
                    dest_ip=f"198.18.{customer}.{1 + i % TARGETS_PER_CUSTOMER}",
                    dest_port=port,
                    proto=proto,
                    at=base + timedelta(milliseconds=i),
                )
            )
        bodies.append(examples.eve_lines(*events))
    return bodies


def post(port: int, path: str, token: str, body: bytes, timeout: float = 60) -> tuple[int, bytes, float]:
    """One webhook delivery on a fresh connection, as a sender would; (status, body, seconds)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        )
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    return response.status, answer, time.perf_counter() - started


# --------------------------------------------------------------------------- reading the outcome


@dataclass
class FeedFigures:
    deliveries: int
    pending: int
    rejected: int
    alerts: int
    distinct_fingerprints: int
    sightings: int


class Probe:
    """Counts in the database, read with one autocommit connection (reconnecting after an outage)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = None

    def _cursor(self):
        import psycopg2

        if self.connection is None or self.connection.closed:
            self.connection = psycopg2.connect(self.url, connect_timeout=5)
            self.connection.autocommit = True
        return self.connection.cursor()

    def one(self, sql: str, params: tuple = ()) -> int:
        import psycopg2

        try:
            with self._cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()[0]
        except psycopg2.Error:
            if self.connection is not None:
                self.connection.close()
            raise

    def feed_id(self, slug: str) -> int:
        return self.one("SELECT id FROM alerts_feed WHERE slug = %s", (slug,))

    def figures(self, feed_id: int) -> FeedFigures:
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'pending'), "
                "count(*) FILTER (WHERE status = 'rejected') FROM alerts_delivery WHERE feed_id = %s",
                (feed_id,),
            )
            deliveries, pending, rejected = cursor.fetchone()
            cursor.execute(
                "SELECT count(*), count(DISTINCT fingerprint), coalesce(sum(count), 0) "
                "FROM alerts_alert WHERE feed_id = %s",
                (feed_id,),
            )
            alerts, distinct, sightings = cursor.fetchone()
        return FeedFigures(deliveries, pending, rejected, alerts, distinct, int(sightings))

    def done(self, feed_id: int, deliveries: int, alerts: int) -> bool:
        """Every delivery of the feed is stored and none is pending, and the feed has its alerts."""
        figures = self.figures(feed_id)
        if figures.rejected:
            raise SystemExit(f"{figures.rejected} deliveries of feed {feed_id} were rejected")
        return figures.deliveries >= deliveries and not figures.pending and figures.alerts >= alerts

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def queue_idle(redis_url: str) -> Callable[[], bool]:
    """The worker has nothing queued, reserved or scheduled (debounced attack summaries)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    return lambda: client.llen("critical") == 0 and client.llen("default") == 0 and client.hlen("unacked") == 0

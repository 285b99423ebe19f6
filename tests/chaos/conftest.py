"""A whole ingest stack of real processes this suite owns, so it can kill any of them by its id.

PostgreSQL (a throw-away cluster made with initdb), Redis, gunicorn serving the console,
a Celery worker and Celery beat, each started here on free loopback ports and in its own
process group. Nothing is shared with the servers the rest of the suite uses, so a
PostgreSQL restart here cannot break another test's connection.

The stack is built once per broker (``BROKERS``): Redis as broker and cache, then RabbitMQ
as the broker (a node of its own: its own node name, AMQP and distribution ports and
database directory under the stack's temporary folder, never the shared node on 5672)
with Redis kept as the cache. Every fault test runs on both.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.harness import (
    REPO,
    Probe,
    Service,
    beat_service,
    console_env,
    free_port,
    wait_for,
    web_service,
    webhook_answers,
    worker_service,
)
from tests.shared import report_figures

FEEDS = ("chaos-worker-killed", "chaos-broker-stopped", "chaos-postgres-restarted")
BROKERS = ("redis", "rabbitmq")
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
# Alerts per fault. RabbitMQ's runs send fewer: its node takes ~10-20 s to boot again after
# the kill, so a run of the full count would add minutes to the suite (notes/h18.md).
ALERTS = {"redis": 100_000, "rabbitmq": 50_000}
FIGURES_SEEN: list[dict] = []
# How quickly a delivery whose message was lost is enqueued again: quick enough that the
# suite does not wait a minute per fault, slow enough that a normal backlog isn't swept.
SWEEP_SECONDS = 5
STALE_SECONDS = 20


def _postgres_bin() -> Path | None:
    for version in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (version / "initdb").exists() and (version / "postgres").exists():
            return version
    return None


def _why_not(broker: str = "redis") -> str:
    if os.geteuid() != 0:
        return "needs root (PostgreSQL is started as the postgres user)"
    if _postgres_bin() is None:
        return "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)"
    if shutil.which("redis-server") is None:
        return "needs redis-server"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "needs the postgres system user"
    if broker == "rabbitmq":
        if not RABBITMQ_SERVER.exists():
            return f"on RabbitMQ needs {RABBITMQ_SERVER} (Debian's rabbitmq-server)"
        try:
            pwd.getpwnam("rabbitmq")
        except KeyError:
            return "on RabbitMQ needs the rabbitmq system user"
    return ""


@dataclass
class Stack:
    root: Path
    broker: str
    alerts: int
    postgres: Service
    redis: Service
    rabbitmq: Service | None
    web: Service
    beat: Service
    env: dict[str, str]
    database_url: str
    port: int
    tokens: dict[str, str]
    probe: Probe
    workers: list[Service] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)
    # What the supervisor restarted, as "worker-2 exited with 1 at 12.3 s".
    restarts: list[str] = field(default_factory=list)
    paused: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    def supervise(self) -> None:
        """Restart a console process that exits, as compose's ``restart: unless-stopped`` and
        runconsole do in production. A kombu error on a lost Redis connection can end a Celery
        worker; the promise under test is that nothing accepted is lost, with that supervision."""
        started = time.monotonic()

        def loop() -> None:
            while not self._stop.wait(0.5):
                if self.paused:
                    continue
                for service in (self.web, self.beat, self.worker):
                    if service.process is None or service.process.poll() is None:
                        continue
                    self.restarts.append(
                        f"{service.name} exited with {service.process.returncode} at "
                        f"{time.monotonic() - started:.0f} s and was restarted"
                    )
                    if service is self.worker:
                        self.start_worker()
                    else:
                        service.start()

        threading.Thread(target=loop, daemon=True).start()

    def stop_supervising(self) -> None:
        self._stop.set()

    @property
    def worker(self) -> Service:
        return self.workers[-1]

    def start_worker(self) -> Service:
        worker = worker_service(name=f"worker-{len(self.workers) + 1}", env=self.env, log_dir=self.root / "logs")
        worker.start()
        self.workers.append(worker)
        return worker

    def services(self) -> list[Service]:
        """What ``wait_for`` fails on when it exits: nothing, since the supervisor restarts them."""
        return []

    def start_redis(self) -> None:
        self.redis.start()
        wait_for("Redis", lambda: _answers(self.redis_port), 30, [self.redis], step=0.1)

    def start_rabbitmq(self) -> None:
        assert self.rabbitmq is not None
        self.rabbitmq.start()
        wait_for("RabbitMQ", lambda: _amqp_answers(self.rabbitmq_port), 120, [self.rabbitmq], step=0.2)

    @property
    def rabbitmq_port(self) -> int:
        return int(self.env["BROKER_URL"].rsplit(":", 1)[1].split("/")[0])

    @property
    def broker_service(self) -> Service:
        """What the broker fault kills: Redis (broker and cache) or the RabbitMQ node."""
        return self.rabbitmq if self.rabbitmq is not None else self.redis

    def start_broker(self) -> None:
        if self.rabbitmq is not None:
            self.start_rabbitmq()
        else:
            self.start_redis()

    def start_postgres(self) -> None:
        self.postgres.start()
        wait_for("PostgreSQL", lambda: _pg_ready(self.database_url), 60, [self.postgres], step=0.2)

    @property
    def redis_port(self) -> int:
        return int(self.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])

    def logs(self) -> str:
        servers = (self.postgres, self.redis, *([self.rabbitmq] if self.rabbitmq else []))
        parts = [f"--- {s.name}\n{s.tail(40)}" for s in (*servers, self.web, self.beat, *self.workers)]
        return "\n".join(parts)


def _answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _amqp_answers(port: int) -> bool:
    import amqp

    connection = amqp.Connection(f"127.0.0.1:{port}", userid="guest", password="guest", connect_timeout=1)
    try:
        connection.connect()
    except Exception:  # refused, reset, or the node still booting
        return False
    with contextlib.suppress(Exception):
        connection.close()
    return True


def _rabbitmq(root: Path, logs: Path) -> tuple[Service, int]:
    """A RabbitMQ node of our own: a node name, AMQP and distribution ports and a database
    folder nobody else uses, and no plugins (the shared node's management plugin would
    fight over port 15672). Run as the rabbitmq user, like Debian's wrapper does."""
    home = root / "rabbitmq"
    (home / "mnesia").mkdir(parents=True)
    amqp_port, dist_port = free_port(), free_port()
    (home / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{amqp_port}\nloopback_users.guest = true\n")
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq-env.conf").write_text("")
    shutil.chown(home, "rabbitmq", "rabbitmq")
    for path in home.rglob("*"):
        shutil.chown(path, "rabbitmq", "rabbitmq")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),  # its own Erlang cookie
        "RABBITMQ_NODENAME": f"shieldwall-chaos-{os.getpid()}@localhost",
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    return Service("rabbitmq", [str(RABBITMQ_SERVER)], env, logs, user="rabbitmq"), amqp_port


def _pg_ready(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=2).close()
    except psycopg2.Error:
        return False
    return True


def _run(argv: list[str], env: dict[str, str], **kwargs) -> str:
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="package", params=BROKERS)
def stack(request):
    broker = request.param
    reason = _why_not(broker)
    if reason:
        pytest.skip(f"chaos suite {reason}")
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="shieldwall-chaos-"))
    root.chmod(0o755)
    pgdata, sockets, logs = root / "pgdata", root / "sockets", root / "logs"
    for folder in (pgdata, sockets):
        folder.mkdir()
        shutil.chown(folder, "postgres", "postgres")
    logs.mkdir()
    _run(
        [str(bindir / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        dict(os.environ),
        user="postgres",
    )
    pg_port, redis_port, web_port = free_port(), free_port(), free_port()
    postgres = Service(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(pg_port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=60",
        ],
        dict(os.environ),
        logs,
        user="postgres",
    )
    redis = Service(
        "redis",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        dict(os.environ),
        logs,
    )
    rabbitmq, broker_url = None, ""
    if broker == "rabbitmq":
        rabbitmq, amqp_port = _rabbitmq(root, logs)
        broker_url = f"amqp://guest:guest@127.0.0.1:{amqp_port}//"
    database_url = f"postgres://postgres@127.0.0.1:{pg_port}/shieldwall_chaos"
    env = console_env(
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        var_dir=root / "var",
        INGEST_SWEEP_SECONDS=str(SWEEP_SECONDS),
        INGEST_STALE_SECONDS=str(STALE_SECONDS),
        BROKER_URL=broker_url,  # empty: Redis is the broker
        CELERY_BROKER_URL="",
    )
    stack = Stack(
        root=root,
        broker=broker,
        alerts=ALERTS[broker],
        postgres=postgres,
        redis=redis,
        rabbitmq=rabbitmq,
        web=web_service(port=web_port, env=env, log_dir=logs, workers=2),
        beat=beat_service(env=env, log_dir=logs),
        env=env,
        database_url=database_url,
        port=web_port,
        tokens={},
        probe=Probe(database_url),
    )
    try:
        if rabbitmq is not None:
            rabbitmq.start()  # it boots (~20 s) while PostgreSQL starts and migrates
        postgres.start()
        admin_url = f"postgres://postgres@127.0.0.1:{pg_port}/postgres"
        wait_for("PostgreSQL", lambda: _pg_ready(admin_url), 60, [postgres], step=0.2)
        _run(["psql", admin_url, "-qc", "CREATE DATABASE shieldwall_chaos"], env)
        stack.start_redis()
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
        # As the image does: with DEBUG=0 a page (the login form) needs the static manifest.
        _run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env)
        seeded = _run(
            [
                sys.executable,
                "-c",
                "import json, django; django.setup(); from bench.harness import seed; "
                f"print(json.dumps(seed(*{list(FEEDS)!r})))",
            ],
            env,
        )
        stack.tokens = json.loads(seeded.strip().splitlines()[-1])
        if rabbitmq is not None:
            wait_for("RabbitMQ", lambda: _amqp_answers(stack.rabbitmq_port), 120, [rabbitmq], step=0.2)
        stack.web.start()
        stack.beat.start()
        stack.start_worker()

        wait_for(
            "the web server",
            lambda: webhook_answers(web_port, FEEDS[0]),
            60,
            [stack.web, stack.beat, stack.worker],
            step=0.2,
        )
        stack.supervise()
        yield stack
    finally:
        stack.stop_supervising()
        for service in (stack.web, stack.beat, *stack.workers, stack.redis):
            with contextlib.suppress(Exception):
                service.stop()
        if rabbitmq is not None:
            rabbitmq.kill(signal.SIGKILL)  # its data goes with the folder; a clean stop takes ~20 s
        with contextlib.suppress(Exception):
            stack.postgres.stop()
        stack.probe.close()
        _save(stack)
        if not os.environ.get("SHIELDWALL_CHAOS_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def _save(stack: Stack) -> None:
    """Keep the figures for the summary at the end of the run (and var/ for the closing note)."""
    if stack.figures:
        report_figures(f"chaos suite on {stack.broker}: alerts sent and stored per fault", _table(stack))
        FIGURES_SEEN.extend({"broker": stack.broker, **f} for f in stack.figures)
        with contextlib.suppress(OSError):
            (REPO / "var").mkdir(exist_ok=True)
            (REPO / "var" / "chaos-figures.json").write_text(json.dumps(FIGURES_SEEN, indent=2))


def _table(stack: Stack) -> str:
    """The figures of every fault, as the closing note quotes them."""
    figures = stack.figures
    servers = "PostgreSQL, Redis" + (", RabbitMQ (the broker)" if stack.rabbitmq else " (broker and cache)")
    lines = [
        f"real {servers}, gunicorn and Celery processes, killed by their own ids",
        f"{'fault':<20} {'sent':>8} {'stored':>8} {'dupes':>6} {'pending':>8} "
        f"{'202':>5} {'503':>5} {'refused':>8} {'other':>6} {'seconds':>8}",
    ]
    for f in figures:
        lines.append(
            f"{f['fault']:<20} {f['sent']:>8,} {f['stored']:>8,} {f['duplicates']:>6} {f['pending']:>8} "
            f"{f['accepted']:>5} {f['unavailable']:>5} {f['refused']:>8} {f['other']:>6} {f['seconds']:>8.1f}"
        )
        lines.append(f"  {f['detail']}")
        for restart in f.get("restarts", []):
            lines.append(f"  supervisor: {restart}")
    return "\n".join(lines)

"""Chaos for enforcement: real processes, killed or cut off in the middle of a three-target apply.

The stack is this module's own: a throw-away PostgreSQL cluster (initdb), a Redis, a Celery
worker and a Cloudflare API stand-in, each a process started here in its own process group
(``tests/chaos/cloudflare_standin.py``), plus two network namespaces (``ip netns add``) whose
nftables hold the mitigation. One mitigation is enforced on three configured targets: nft in
namespace A, nft in namespace B, then the customer's Cloudflare account. The faults:

(a) the worker is SIGKILLed while Cloudflare holds its request (both namespaces already hold
    the rule, Cloudflare has created it, the answer is lost); a new worker starts, reconciles;
(b) Cloudflare answers 429 (with Retry-After), then 500, then 200: applied exactly once, and the
    ledger's Cloudflare step shows the three answers;
(c) PostgreSQL is stopped while Cloudflare holds the request, Cloudflare then answers (the target
    is written) and the worker's ledger write fails; PostgreSQL is started again and reconciliation
    reads Cloudflare back, records what it holds, and undoes the mitigation everywhere.

After each, the ledger and the targets agree, checked with ``ip netns exec X nft list ruleset``
and the stand-in's own state. Figures are printed as the ingest chaos tests print theirs.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from bench.harness import Service, console_env, free_port, wait_for, worker_service
from tests.chaos.conftest import _pg_ready, _postgres_bin, _run
from tests.shared import report_figures

pytestmark = [pytest.mark.chaos, pytest.mark.root, pytest.mark.peer]

ACCOUNT = "01a7362d577a6c3019a474fd6f485823"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
EXPRESSION = "ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53"
STALE_SECONDS = 3
FIGURES: list[str] = []

SEED = """
import json
from django.contrib.auth.models import Group
from console import roles
from django.contrib.auth import get_user_model
from console.models import Asset, Customer
from mitigations.models import EnforcementTarget

User = get_user_model()
customer, created = Customer.objects.get_or_create(slug="chaos-acme", defaults={{"name": "Chaos Acme"}})
if created:
    Asset.objects.create(customer=customer, kind=Asset.Kind.PREFIX, value="203.0.113.0/24")
user, _ = User.objects.get_or_create(username="chaos-eli")
user.groups.add(Group.objects.get(name=roles.ENGINEER))
for name, ns in (("a-edge-1", "{ns_a}"), ("a-edge-2", "{ns_b}")):
    EnforcementTarget.objects.update_or_create(name=name, defaults={{"kind": "nftables", "namespace": ns}})
EnforcementTarget.objects.update_or_create(
    name="cf-acme",
    defaults={{"kind": "cloudflare", "account_id": "{account}", "zone_id": "{zone}", "customer": customer}},
)
"""

DRAFT = """
import json
from django.contrib.auth import get_user_model
from console.models import Customer
from mitigations import services
from mitigations.models import EnforcementTarget, Mitigation

t = {{t.name: t for t in EnforcementTarget.objects.all()}}
m = services.mitigation_create(
    customer=Customer.objects.get(slug="chaos-acme"), kind="firewall_rule",
    user=get_user_model().objects.get(username="chaos-eli"),
    target=t["a-edge-1"], also_targets=[t["a-edge-2"], t["cf-acme"]], expression="{expression}", action="block",
    ttl_seconds=600, title="{title}",
)
assert not m.compile_errors, m.compile_errors
# Approval is not under test here (tests/mitigations/test_gate.py): the apply task wants "approved".
Mitigation.objects.filter(pk=m.pk).update(state=Mitigation.State.APPROVED)
from mitigations import tasks
tasks.apply_mitigation.delay(m.pk)
print(json.dumps({{"id": m.pk, "name": m.name, "targets": m.targets}}))
"""

RECONCILE = "from mitigations import tasks; tasks.reconcile_enforcement.delay()"


def _why_not() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces, a PostgreSQL cluster run as postgres)"
    for binary in ("nft", "ip", "redis-server"):
        if shutil.which(binary) is None:
            return f"needs {binary}"
    if _postgres_bin() is None:
        return "needs the PostgreSQL server binaries (initdb, postgres)"
    return ""


class Enforcement:
    """The processes and namespaces of this module, and what the tests read from them."""

    def __init__(self, root: Path) -> None:
        self.root, self.logs = root, root / "logs"
        tag = uuid.uuid4().hex[:6]
        self.namespaces = [f"h19e-a-{tag}", f"h19e-b-{tag}"]
        self.workers: list[Service] = []
        self.env: dict[str, str] = {}
        self.postgres: Service | None = None
        self.redis: Service | None = None
        self.standin: Service | None = None
        self.cf_port = 0
        self.database_url = ""

    # -- the Cloudflare stand-in's own state
    def cf(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.cf_port}/client/v4{path}",
            data=data,
            method="POST" if data else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback stand-in
            return json.loads(answer.read())["result"]

    def cf_rules(self, name: str) -> list[dict]:
        return [r for r in self.cf("/_state")["rules"] if r["description"].startswith(f"[{name}]")]

    # -- nft in each namespace, read with the real tool
    def nft_holds(self, namespace: str, name: str) -> bool:
        listing = subprocess.run(
            ["ip", "netns", "exec", namespace, "nft", "list", "ruleset"], capture_output=True, text=True, timeout=30
        )
        assert listing.returncode == 0, listing.stderr
        return name in listing.stdout

    # -- the database, read directly (the test process is not connected to this cluster)
    def query(self, sql: str, *args: object) -> list[tuple]:
        import psycopg2

        with contextlib.closing(psycopg2.connect(self.database_url, connect_timeout=5)) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def ledger(self, mitigation_id: int) -> list[tuple]:
        return self.query(
            "SELECT op, target, outcome, attempts, handle::text FROM mitigations_enforcementstep "
            "WHERE mitigation_id = %s ORDER BY id",
            mitigation_id,
        )

    def state(self, mitigation_id: int) -> tuple[str, str]:
        return self.query("SELECT state, error FROM mitigations_mitigation WHERE id = %s", mitigation_id)[0]

    def shell(self, code: str) -> str:
        return _run([sys.executable, "manage.py", "shell", "-c", code], self.env, timeout=120)

    def start_worker(self) -> Service:
        worker = worker_service(name=f"enf-worker-{len(self.workers) + 1}", env=self.env, log_dir=self.logs)
        worker.start()
        self.workers.append(worker)
        return worker

    def draft_and_apply(self, title: str) -> dict:
        out = self.shell(DRAFT.format(expression=EXPRESSION, title=title))
        return json.loads(out.strip().splitlines()[-1])

    def wait_state(self, mitigation_id: int, states: tuple[str, ...], timeout: float, nudge: bool = False) -> float:
        """Wait for the mitigation to reach one of ``states``; with ``nudge``, send reconcile as beat does."""
        started = time.monotonic()
        last_nudge = started
        while time.monotonic() - started < timeout:
            if self.state(mitigation_id)[0] in states:
                return time.monotonic() - started
            if nudge and time.monotonic() - last_nudge > 8:
                self.shell(RECONCILE)  # what beat sends every minute (reconcile-enforcement)
                last_nudge = time.monotonic()
            time.sleep(0.3)
        tails = "\n".join(w.tail(40) for w in self.workers)
        raise AssertionError(f"mitigation {mitigation_id} is {self.state(mitigation_id)}, not {states}:\n{tails}")

    def wait_holding(self, timeout: float = 90) -> float:
        return wait_for(
            "the stand-in holding a request", lambda: self.cf("/_state")["holding"], timeout, self.workers[-1:]
        )


@pytest.fixture(scope="module")
def enf():
    if reason := _why_not():
        pytest.skip(f"enforcement chaos {reason}")
    root = Path(tempfile.mkdtemp(prefix="shieldwall-enf-chaos-"))
    root.chmod(0o755)
    lab = Enforcement(root)
    pgdata, sockets = root / "pgdata", root / "sockets"
    for folder in (pgdata, sockets):
        folder.mkdir()
        shutil.chown(folder, "postgres", "postgres")
    bindir = _postgres_bin()
    _run(
        [str(bindir / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        dict(os.environ),
        user="postgres",
    )
    pg_port, redis_port, lab.cf_port = free_port(), free_port(), free_port()
    lab.postgres = Service(
        "postgres",
        [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(pg_port), "-k", str(sockets)]
        + ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=40"],
        dict(os.environ),
        lab.logs,
        user="postgres",
    )
    lab.redis = Service(
        "redis",
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        dict(os.environ),
        lab.logs,
    )
    lab.standin = Service(
        "cloudflare-standin",
        [sys.executable, "-u", "-m", "tests.chaos.cloudflare_standin", str(lab.cf_port)],
        dict(os.environ),
        lab.logs,
    )
    lab.database_url = f"postgres://postgres@127.0.0.1:{pg_port}/shieldwall_enf"
    lab.env = console_env(
        database_url=lab.database_url,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        var_dir=root / "var",
        BROKER_URL="",
        CELERY_BROKER_URL="",
        CLOUDFLARE_API_BASE=f"http://127.0.0.1:{lab.cf_port}/client/v4",
        CLOUDFLARE_API_TOKEN="chaos-token",
        CLOUDFLARE_BACKOFF="0.2",
        OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8",
        ENFORCEMENT_STALE_SECONDS=str(STALE_SECONDS),
        ENFORCEMENT_RETRY_BASE_S="0.2",
    )
    try:
        for ns in lab.namespaces:
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=30)
        lab.postgres.start()
        lab.redis.start()
        lab.standin.start()
        admin_url = f"postgres://postgres@127.0.0.1:{pg_port}/postgres"
        wait_for("PostgreSQL", lambda: _pg_ready(admin_url), 60, [lab.postgres], step=0.2)
        _run(["psql", admin_url, "-qc", "CREATE DATABASE shieldwall_enf"], lab.env)
        _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], lab.env, timeout=600)
        lab.shell(SEED.format(ns_a=lab.namespaces[0], ns_b=lab.namespaces[1], account=ACCOUNT, zone=ZONE))
        wait_for("the Cloudflare stand-in", lambda: _answers(lab), 30, [lab.standin], step=0.1)
        lab.start_worker()
        yield lab
    finally:
        with contextlib.suppress(Exception):
            lab.cf("/_release", {"answer": False})
        for service in (*lab.workers, lab.standin, lab.redis):
            with contextlib.suppress(Exception):
                service.stop()
        if lab.postgres is not None:
            with contextlib.suppress(Exception):
                lab.postgres.kill(signal.SIGINT)  # fast shutdown
        for ns in lab.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        if FIGURES:
            report_figures("enforcement chaos: three targets (nft in 2 namespaces + Cloudflare stand-in)", _table())
        if not os.environ.get("SHIELDWALL_CHAOS_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def _answers(lab: Enforcement) -> bool:
    try:
        lab.cf("/_state")
    except OSError:
        return False
    return True


def _table() -> str:
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    return "\n".join(
        [*FIGURES, f"(child processes' CPU: {cpu.ru_utime + cpu.ru_stime:.1f} s; 2 shared cores, timings are noisy)"]
    )


def _rows(ledger: list[tuple]) -> list[tuple[str, str, str]]:
    return [(op, target, outcome) for op, target, outcome, _, _ in ledger]


def _agree(lab: Enforcement, mitigation: dict) -> dict[str, bool]:
    """What each target holds, read from the target itself."""
    name = mitigation["name"]
    return {
        "nftables:a-edge-1": lab.nft_holds(lab.namespaces[0], name),
        "nftables:a-edge-2": lab.nft_holds(lab.namespaces[1], name),
        "cloudflare": bool(lab.cf_rules(name)),
    }


def test_a_worker_killed_during_a_three_target_apply_leaves_ledger_and_targets_agreeing(enf):
    enf.cf("/_script", {"faults": [{"hold": True}]})
    started = time.monotonic()
    m = enf.draft_and_apply("chaos: worker killed")
    assert m["targets"] == ["nftables:a-edge-1", "nftables:a-edge-2", "cloudflare"]
    enf.wait_holding()
    # The worker is inside the Cloudflare call: both namespaces hold it, Cloudflare has created it.
    assert _agree(enf, m) == dict.fromkeys(m["targets"], True)
    before = _rows(enf.ledger(m["id"]))
    assert before == [
        ("apply", "nftables:a-edge-1", "done"),
        ("apply", "nftables:a-edge-2", "done"),
        ("apply", "cloudflare", "intent"),
    ], before
    victim = enf.workers[-1]
    victim.kill(signal.SIGKILL)
    killed_at = time.monotonic() - started
    enf.cf("/_release", {"answer": False})  # the held request's connection goes with the worker
    assert enf.state(m["id"])[0] == "applying"
    time.sleep(STALE_SECONDS)
    enf.start_worker()  # its worker_ready sends reconcile_enforcement
    recovered = enf.wait_state(m["id"], ("failed",), 120, nudge=True)
    after = _rows(enf.ledger(m["id"]))
    held = _agree(enf, m)
    assert held == dict.fromkeys(m["targets"], False), held
    assert after[3:] == [
        ("reconcile", "cloudflare", "done"),  # read back: Cloudflare holds it (created in the lost call)
        ("compensate", "cloudflare", "done"),
        ("compensate", "nftables:a-edge-2", "done"),
        ("compensate", "nftables:a-edge-1", "done"),
    ], after
    assert '"found": true' in enf.ledger(m["id"])[3][4]
    state, error = enf.state(m["id"])
    assert "undone on nftables:a-edge-1, nftables:a-edge-2, cloudflare" in error, error
    FIGURES.append(
        f"(a) worker SIGKILL {killed_at:.1f} s into the apply (2 nft done, Cloudflare created it, answer lost): "
        f"ledger {len(before)} steps, 1 intent; new worker reconciled in {recovered:.1f} s: read back Cloudflare "
        f"(found), 3 compensations; targets holding it after: {sum(held.values())} of 3; state {state}"
    )


def test_cloudflare_429_then_500_then_200_applies_exactly_once_and_the_ledger_shows_the_retries(enf):
    enf.cf("/_script", {"faults": [{"status": 429, "retry_after": "1"}, {"status": 500}]})
    m = enf.draft_and_apply("chaos: 429 500 200")
    took = enf.wait_state(m["id"], ("active", "failed"), 120)
    state, error = enf.state(m["id"])
    assert state == "active", error
    assert len(enf.cf_rules(m["name"])) == 1  # applied exactly once on Cloudflare
    assert _agree(enf, m) == dict.fromkeys(m["targets"], True)
    rows = enf.ledger(m["id"])
    assert _rows(rows) == [("apply", t, "done") for t in m["targets"]]
    handle = json.loads(rows[2][4])
    statuses = [r["status"] for r in handle["requests"] if r["method"] in ("PUT", "POST")]
    assert statuses == [429, 500, 200], handle["requests"]
    seen = [s for method, path, s in enf.cf("/_state")["seen"] if method in ("PUT", "POST")]
    FIGURES.append(
        f"(b) Cloudflare 429 (Retry-After: 1), 500, 200: active in {took:.1f} s; rule-creating requests seen by "
        f"the stand-in {seen[-3:]}, rules it holds for the mitigation: {len(enf.cf_rules(m['name']))}; "
        f"ledger Cloudflare step done with answers {statuses}"
    )


def test_postgresql_restarted_between_the_target_write_and_the_ledger_write(enf):
    enf.cf("/_script", {"faults": [{"hold": True}]})
    started = time.monotonic()
    m = enf.draft_and_apply("chaos: postgres restarted")
    enf.wait_holding()
    assert _rows(enf.ledger(m["id"]))[-1] == ("apply", "cloudflare", "intent")
    enf.postgres.kill(signal.SIGINT)  # fast shutdown: every client connection is cut
    down_at = time.monotonic() - started
    enf.cf("/_release", {"answer": True})  # Cloudflare answers: the target holds it, the handle reaches the worker
    time.sleep(2)  # the worker's ledger write fails (OperationalError); its task retries later
    assert len(enf.cf_rules(m["name"])) == 1
    enf.postgres.start()
    wait_for("PostgreSQL", lambda: _pg_ready(enf.database_url), 60, [enf.postgres], step=0.2)
    back_at = time.monotonic() - started
    assert enf.state(m["id"])[0] == "applying"
    assert _rows(enf.ledger(m["id"]))[-1] == ("apply", "cloudflare", "intent")  # the ledger write was lost
    recovered = enf.wait_state(m["id"], ("failed",), 120, nudge=True)
    rows = enf.ledger(m["id"])
    after = _rows(rows)
    assert after[3] == ("reconcile", "cloudflare", "done") and '"found": true' in rows[3][4], after
    assert after[4:] == [
        ("compensate", "cloudflare", "done"),
        ("compensate", "nftables:a-edge-2", "done"),
        ("compensate", "nftables:a-edge-1", "done"),
    ], after
    held = _agree(enf, m)
    assert held == dict.fromkeys(m["targets"], False), held
    FIGURES.append(
        f"(c) PostgreSQL stopped {down_at:.1f} s into the apply, Cloudflare then wrote the rule; PostgreSQL back at "
        f"{back_at:.1f} s; reconciled {recovered:.1f} s later: Cloudflare read back (found) and recorded, "
        f"3 compensations; targets holding it after: {sum(held.values())} of 3 (the worker's ledger write was lost: "
        f"Cloudflare's step was still 'intent' with PostgreSQL back)"
    )

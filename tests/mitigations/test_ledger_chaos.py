"""Chaos: a real worker process SIGKILLed, or cut off from PostgreSQL, in the middle of an apply.

The target is the customer's configured Cloudflare zone, served by a local stand-in that creates
the rule and then holds the request open (the answer, and so the handle, is lost with the
worker). The worker is a ``manage.py shell`` process running the apply task's body against the
same PostgreSQL database; it is killed (SIGKILL) while the stand-in holds its request; or its
database connection is terminated there (``pg_terminate_backend``: what a PostgreSQL restart does
to a client, without restarting the server other tests share), so the stand-in's answer arrives
and the ledger write after it fails. Then ``ledger.reconcile`` runs as at worker start, and the
ledger and the stand-in's state must agree: nothing installed anywhere, the mitigation failed
with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from mitigations import ledger
from mitigations.models import EnforcementStep, Mitigation
from tests.shared import report_figures

REPO = Path(__file__).resolve().parents[2]
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
ACCOUNT = "01a7362d577a6c3019a474fd6f485823"
TOKEN = "chaos-token"

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the killed worker shares PostgreSQL with the test"),
]


class HoldingCloudflare:
    """A Cloudflare stand-in with state: phase entry-point rulesets and their rules.

    The first rule-creating request is the one the worker dies in: the stand-in *creates* the rule
    (as Cloudflare would, the response being lost with the worker), then holds the request open.
    """

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answer_held = False  # True: once released, the held request is answered (the worker lives)
        self.seen: list[tuple[str, str]] = []
        self.rulesets: dict[str, dict] = {}  # entry-point path -> {"id", "rules"}

    @property
    def held(self) -> list[str]:
        return [r["description"] for rs in self.rulesets.values() for r in rs["rules"]]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        path = h.path.removeprefix("/client/v4")
        self.seen.append((h.command, path))
        if path.endswith("/entrypoint") and h.command == "GET":
            ruleset = self.rulesets.get(path)
            return self._send(h, 200 if ruleset else 404, ruleset)
        if path.endswith("/entrypoint") and h.command == "PUT":
            ruleset = self.rulesets.setdefault(path, {"id": f"rs-{len(self.rulesets) + 1}", "rules": []})
            for rule in body["rules"]:
                ruleset["rules"].append({**rule, "id": f"r-{len(ruleset['rules']) + 1}"})
            if not self.arrived.is_set():
                self.arrived.set()
                self.release.wait(60)  # the worker is killed (or its database dropped) while waiting
                return self._send(h, 200, ruleset) if self.answer_held else None
            return self._send(h, 200, ruleset)
        if h.command == "DELETE" and "/rules/" in path:
            rule_id = path.rsplit("/", 1)[1]
            for ruleset in self.rulesets.values():
                ruleset["rules"] = [r for r in ruleset["rules"] if r["id"] != rule_id]
            return self._send(h, 200, {"id": rule_id})
        return self._send(h, 200, {})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, result: Any) -> None:
        data = json.dumps({"success": status < 400, "errors": [], "result": result}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def holding_cf(settings):
    fake = HoldingCloudflare()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.handle(self)

        do_POST = do_PUT = do_DELETE = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.base = f"http://127.0.0.1:{server.server_port}/client/v4"
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.CLOUDFLARE_API_BASE = fake.base
    settings.CLOUDFLARE_API_TOKEN = TOKEN
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("fault", ["worker SIGKILL", "database connection dropped"])
def test_fault_mid_apply_ledger_and_target_agree(
    transactional_db, draft, holding_cf, settings, fault, make_target, customer_a
):
    """SIGKILL: the worker dies while Cloudflare holds its request. Database dropped: while Cloudflare
    holds it, the worker's PostgreSQL connection is terminated (what a restart does to it); Cloudflare
    then answers, the target is written, and the ledger write that should follow fails."""
    zone = make_target("cloudflare", name="cf-acme", account_id=ACCOUNT, zone_id=ZONE, customer=customer_a)
    mitigation = draft(target=zone)
    assert not mitigation.compile_errors, mitigation.compile_errors
    Mitigation.objects.filter(pk=mitigation.pk).update(state=Mitigation.State.APPROVED)

    s = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}",
        "SHIELDWALL_TESTING": "1",
        "CLOUDFLARE_API_BASE": holding_cf.base,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PGAPPNAME": "h19-ledger-worker",  # so only this process's connection is dropped
    }
    code = f"from mitigations import services; services.mitigation_install(mitigation_id={mitigation.pk})"
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert holding_cf.arrived.wait(60), "the worker never reached Cloudflare"
        if fault == "worker SIGKILL":
            os.kill(worker.pid, signal.SIGKILL)
        else:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                    ["h19-ledger-worker"],
                )
                assert cursor.fetchone()[0] >= 1, "the worker had no database connection to drop"
            holding_cf.answer_held = True
            holding_cf.release.set()  # Cloudflare answers: the rule is in place, the handle reaches the worker
        worker.wait(60)
        assert worker.returncode != 0
        if fault != "worker SIGKILL":
            died_of = worker.stderr.read().decode(errors="replace")
            assert "OperationalError" in died_of and "mitigations/ledger.py" in died_of, died_of[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
    fault_after = time.monotonic() - started
    name = mitigation.name
    mitigation.refresh_from_db()
    before = list(EnforcementStep.objects.filter(mitigation=mitigation).values_list("op", "target", "outcome"))
    assert mitigation.state == Mitigation.State.APPLYING
    assert before == [("apply", "cloudflare", "intent")], before
    assert holding_cf.held == [f"[{name}] block {mitigation.expression}"]  # the target holds it

    holding_cf.release.set()
    counts = ledger.reconcile(stale_seconds=0)  # what the next worker's start does once the apply is stale
    assert counts == {"reconciled": 1, "left": 0}
    mitigation.refresh_from_db()
    after = list(EnforcementStep.objects.filter(mitigation=mitigation).values_list("op", "target", "outcome"))
    assert mitigation.state == Mitigation.State.FAILED
    assert holding_cf.held == []  # the stand-in's rule, created without a recorded handle, found by tag and deleted
    assert ledger.holding(mitigation) == []  # and the ledger says so
    report_figures(
        "enforcement chaos",
        f"{fault} {fault_after:.1f} s into an apply on a Cloudflare zone (stand-in): "
        f"ledger {before} -> after reconcile {after[1:]}; stand-in holds {len(holding_cf.held)} rules "
        f"(its rule, created in the interrupted call with no handle in the ledger, found by tag and deleted); "
        f"state {mitigation.state}",
    )

"""Backup and restore on PostgreSQL: pg_dump, pg_restore into a fresh database, restore_check finds every row.

The path is the one README.md documents: a manifest from ``restore_check --write`` beside a
``pg_dump -Fc`` dump, ``pg_restore`` into an empty database, ``restore_check --against`` on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from alerts.models import Alert
from console.models import AuditEvent
from mitigations.models import Mitigation
from tests.security.builders import build_world
from tests.shared import report_figures
from tickets.models import Ticket

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump/pg_restore: PostgreSQL only"),
    pytest.mark.skipif(not shutil.which("pg_dump") or not shutil.which("pg_restore"), reason="no pg_dump/pg_restore"),
]


def _pg(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    s = connection.settings_dict
    env = {**os.environ, "PGHOST": s["HOST"] or "127.0.0.1", "PGPORT": str(s["PORT"] or 5432), "PGUSER": s["USER"]}
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = s["PASSWORD"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, **kwargs)


def _restore_check(database: str, *args: str) -> subprocess.CompletedProcess:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    url = f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{database}"
    env = {**os.environ, "DATABASE_URL": url, "SHIELDWALL_TESTING": "1"}
    argv = [sys.executable, "manage.py", "restore_check", *args]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def fresh_database():
    name = f"{connection.settings_dict['NAME']}_restored"[:63]
    _pg("dropdb", "--if-exists", name)
    created = _pg("createdb", name)
    assert created.returncode == 0, created.stderr
    yield name
    _pg("dropdb", "--if-exists", "--force", name)


def test_a_dump_restored_into_a_fresh_database_has_every_row(
    transactional_db, customer_a, customer_b, engineer, tmp_path, fresh_database
):
    for customer in (customer_a, customer_b):
        build_world(customer, engineer)
    source = {
        "alerts": sorted(Alert.objects.values_list("pk", flat=True)),
        "tickets": sorted(Ticket.objects.values_list("number", flat=True)),
        "mitigations": sorted(Mitigation.objects.values_list("pk", flat=True)),
        "audit": AuditEvent.objects.count(),
    }
    manifest = tmp_path / "backup.manifest.json"
    call_command("restore_check", write=str(manifest))
    dump = tmp_path / "shieldwall.dump"
    dumped = _pg("pg_dump", "--format=custom", "--file", str(dump), connection.settings_dict["NAME"])
    assert dumped.returncode == 0, dumped.stderr
    restored = _pg("pg_restore", "--no-owner", "--exit-on-error", "--dbname", fresh_database, str(dump))
    assert restored.returncode == 0, restored.stderr

    check = _restore_check(fresh_database, "--against", str(manifest))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "restore complete" in check.stdout

    # The restored rows themselves, read back from the fresh database: every one of them.
    listed = _restore_check(fresh_database, "--json")
    found = json.loads(listed.stdout)
    tables, expected = found["tables"], json.loads(manifest.read_text())["tables"]
    assert tables["alerts.alert"]["rows"] == len(source["alerts"]) > 0
    assert tables["tickets.ticket"]["rows"] == len(source["tickets"]) > 0
    assert tables["mitigations.mitigation"]["rows"] == len(source["mitigations"]) > 0
    assert found["audit"]["events"] == source["audit"] > 0
    assert all(tables[label] == want for label, want in expected.items())
    report_figures(
        "backup and restore",
        f"pg_dump -Fc ({dump.stat().st_size:,} bytes) restored into {fresh_database}: "
        f"{len(source['alerts'])} alerts, {len(source['tickets'])} tickets, {len(source['mitigations'])} mitigations, "
        f"{source['audit']} audit events, {sum(t['rows'] for t in tables.values())} rows in {len(tables)} tables "
        "all found; audit chain intact",
    )


def test_restore_check_names_a_lost_row_and_a_rewritten_audit_event(
    transactional_db, customer_a, engineer, tmp_path, fresh_database
):
    build_world(customer_a, engineer)
    manifest = tmp_path / "backup.manifest.json"
    call_command("restore_check", write=str(manifest))
    dump = tmp_path / "shieldwall.dump"
    assert _pg("pg_dump", "--format=custom", "--file", str(dump), connection.settings_dict["NAME"]).returncode == 0
    assert _pg("pg_restore", "--no-owner", "--dbname", fresh_database, str(dump)).returncode == 0
    first = AuditEvent.objects.order_by("id").first().pk
    tamper = (
        "ALTER TABLE console_auditevent DISABLE TRIGGER console_auditevent_no_update_delete;"
        f"UPDATE console_auditevent SET actor_name = 'someone-else' WHERE id = {first};"
        "ALTER TABLE console_auditevent ENABLE TRIGGER console_auditevent_no_update_delete;"
        "DELETE FROM alerts_silence;"
    )
    assert _pg("psql", "-v", "ON_ERROR_STOP=1", "-d", fresh_database, "-c", tamper).returncode == 0
    check = _restore_check(fresh_database, "--against", str(manifest))
    assert check.returncode == 1
    assert "alerts.silence: 0 rows, expected 1" in check.stderr
    assert "audit chain broken" in check.stderr

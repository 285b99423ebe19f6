"""What a backup must bring back, measured the same way before the dump and after the restore.

``inventory()`` gives, for every table of the console's apps, its row count and a digest of its
primary keys (so "the same number of rows" cannot hide one lost and one duplicated), and for the
audit log a hash chain: SHA-256 over each event in id order, each link hashing the previous
link and the event's content. A restore is complete when its inventory equals the one written
from the source at dump time; a rewritten, dropped or reordered audit event breaks the chain at
that event, and ``compare`` names the first one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from django.apps import apps
from django.db import connections

from console.models import AuditEvent

APP_LABELS = ("console", "alerts", "tickets", "mitigations", "traffic", "auth")
AUDIT_FIELDS = (
    "id",
    "at",
    "actor_id",
    "actor_name",
    "request_id",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "customer_id",
    "before",
    "after",
)
# The rows a support team could least afford to lose: named in the command's output first.
KEY_TABLES = ("alerts.alert", "tickets.ticket", "mitigations.mitigation", "console.auditevent")


def _tables() -> list[Any]:
    models = [m for label in APP_LABELS for m in apps.get_app_config(label).get_models()]
    return sorted((m for m in models if m._meta.managed and not m._meta.proxy), key=lambda m: m._meta.label_lower)


def audit_chain(using: str = "default") -> dict[str, Any]:
    """The audit log's hash chain: its length, last id, final link and each link's id every 10,000 events."""
    link = hashlib.sha256(b"shieldwall-audit").hexdigest()
    count, last_id = 0, None
    rows = AuditEvent.objects.using(using).order_by("id").values_list(*AUDIT_FIELDS).iterator(chunk_size=5000)
    marks: dict[str, str] = {}
    for row in rows:
        content = orjson.dumps(list(row), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
        link = hashlib.sha256(link.encode() + content).hexdigest()
        count += 1
        last_id = row[0]
        if count % 10_000 == 0:
            marks[str(last_id)] = link
    return {"events": count, "last_id": last_id, "link": link, "marks": marks}


def inventory(using: str = "default") -> dict[str, Any]:
    """Counts and primary-key digests of every table, plus the audit chain."""
    tables: dict[str, dict[str, Any]] = {}
    for model in _tables():
        digest = hashlib.sha256()
        count = 0
        pks = model._base_manager.using(using).order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000)
        for pk in pks:
            digest.update(str(pk).encode() + b",")
            count += 1
        tables[model._meta.label_lower] = {"rows": count, "keys": digest.hexdigest()}
    return {"vendor": connections[using].vendor, "tables": tables, "audit": audit_chain(using)}


def audit_guard_present(using: str = "default") -> bool | None:
    """PostgreSQL: the append-only trigger came back with the schema (None on other databases)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'console_auditevent_no_update_delete' AND tgenabled <> 'D'"
        )
        return cursor.fetchone()[0] == 1


def compare(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """What the restored database lacks or has differently; [] when it is complete."""
    problems = []
    for label, want in sorted(expected["tables"].items()):
        got = found["tables"].get(label)
        if got is None:
            problems.append(f"{label}: table missing")
        elif got["rows"] != want["rows"]:
            problems.append(f"{label}: {got['rows']} rows, expected {want['rows']}")
        elif got["keys"] != want["keys"]:
            problems.append(f"{label}: {got['rows']} rows but not the same ones (primary keys differ)")
    want, got = expected["audit"], found["audit"]
    if (want["events"], want["last_id"], want["link"]) != (got["events"], got["last_id"], got["link"]):
        first_bad = next(
            (mark for mark, link in want["marks"].items() if got["marks"].get(mark) != link),
            "after the last checkpoint",
        )
        problems.append(
            f"audit chain broken: {got['events']} events ending at id {got['last_id']}, expected "
            f"{want['events']} ending at id {want['last_id']}; first difference at or before event {first_bad}"
        )
    return problems

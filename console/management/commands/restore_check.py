"""Check a restored database: every table's rows and the audit log's hash chain, against the source.

On the source, next to the dump:   manage.py restore_check --write backup.manifest.json
On the restored database:          manage.py restore_check --against backup.manifest.json

Without ``--against`` it prints the inventory (counts, audit chain) and checks the audit log's
append-only trigger; with it, any difference fails the command (exit status 1) and is named.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.backup import KEY_TABLES, audit_guard_present, compare, inventory


class Command(BaseCommand):
    help = "Inventory of the database (rows per table, audit hash chain); compare it with a manifest of the source."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--write", metavar="FILE", help="write this database's inventory (the manifest) to FILE")
        parser.add_argument("--against", metavar="FILE", help="compare this database with the manifest in FILE")
        parser.add_argument("--database", default="default")
        parser.add_argument("--json", action="store_true", help="print the inventory as JSON")

    def handle(self, *args, write: str | None, against: str | None, database: str, json: bool, **options) -> None:
        found = inventory(database)
        if write:
            Path(write).write_text(_dumps(found))
            self.stdout.write(f"manifest written to {write}: {_line(found)}")
        if json:
            self.stdout.write(_dumps(found))
        elif not write:
            self.stdout.write(_line(found))
        guard = audit_guard_present(database)
        if guard is False:
            raise CommandError("the audit log's append-only trigger is missing or disabled: restore the full schema")
        if against:
            expected = _load(against)
            problems = compare(expected, found)
            if problems:
                raise CommandError("restore incomplete:\n  " + "\n  ".join(problems))
            self.stdout.write(
                f"restore complete: {len(expected['tables'])} tables, every row and the audit chain "
                f"({found['audit']['events']} events) as in the manifest"
            )


def _line(found: dict) -> str:
    tables = found["tables"]
    key = ", ".join(f"{tables[label]['rows']} {label.split('.')[1]}" for label in KEY_TABLES if label in tables)
    total = sum(t["rows"] for t in tables.values())
    return f"{key}; {total} rows in {len(tables)} tables; audit chain {found['audit']['link'][:16]}…"


def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the manifest {path}: {exc}") from exc


def _dumps(value: dict) -> str:
    return json.dumps(value, indent=2, sort_keys=True)

"""Summarise an HTTP request log, or compare an attack log with a baseline."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from traffic.parsers.compare import compare
from traffic.parsers.httplog import LogError, read_log, summarize_log


class Command(BaseCommand):
    help = "Analyse a Logpush (JSON lines) or combined-format log; --baseline FILE compares them."
    # A file in, text out: no database, no URL, so not the system checks either (loading the
    # URLconf for them is most of what the engineer would wait for before the work starts).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--format", choices=["logpush", "combined"], default=None)
        parser.add_argument("--baseline")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, file: str, format: str | None, baseline: str | None, json: bool, **options) -> None:
        try:
            attack = read_log(file, fmt=format)
            base = read_log(baseline, fmt=format) if baseline else None
        except (LogError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        result = {"summary": summarize_log(attack.table), "errors": attack.errors[:20]}
        if base is not None:
            result["comparison"] = compare(attack.table, base.table)
        if json:
            self.stdout.write(_dumps(result))
            return
        summary = result["summary"]
        self.stdout.write(f"{summary['requests']} requests, peak {summary['peak_rps']} rps")
        for row in summary["top_paths"][:10]:
            self.stdout.write(f"  {row['requests']:>8}  {row['value']}")
        for signature in result.get("comparison", {}).get("signatures", []):
            self.stdout.write(
                f"signature: {signature['expression']}  attack {signature['attack_coverage']:.2%}"
                f"  baseline {signature['baseline_collateral']:.2%}"
            )


def _dumps(value) -> str:
    return json.dumps(value, indent=2, default=str)

"""Evaluate a rule expression over an attack and a baseline file: what it catches, what it costs."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mitigations.rules import RuleError
from traffic.parsers.httplog import LogError, read_log
from traffic.parsers.pcap import PcapError, read_pcap
from traffic.services import PCAP_MAGICS, rule_simulate


def load_records(path: str):
    with Path(path).open("rb") as fh:
        magic = fh.read(4)
    if magic in PCAP_MAGICS:
        return read_pcap(path).table
    return read_log(path).table


class Command(BaseCommand):
    help = "Simulate a rule (Cloudflare Rules language) on captures or request logs."
    # A file in, text out: no database, no URL, so not the system checks either (loading the
    # URLconf for them is most of what the engineer would wait for before the work starts).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("expression")
        parser.add_argument("--attack")
        parser.add_argument("--baseline")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, expression: str, attack: str | None, baseline: str | None, json: bool, **options) -> None:
        if not attack and not baseline:
            raise CommandError("give --attack FILE and/or --baseline FILE")
        try:
            result = rule_simulate(
                expression=expression,
                attack=load_records(attack) if attack else None,
                baseline=load_records(baseline) if baseline else None,
            )
        except RuleError as exc:
            raise CommandError(f"rule error: {exc}") from exc
        except (PcapError, LogError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if json:
            self.stdout.write(_dumps(result))
            return
        for name in ("attack", "baseline"):
            if name in result:
                part = result[name]
                if part["share"] is None:  # the sample cannot say (no such fields, no such traffic)
                    self.stdout.write(f"{name}: {part.get('unknown') or 'unknown'} ({part['records']} records)")
                    continue
                self.stdout.write(f"{name}: {part['matched']} of {part['records']} matched ({part['share']:.2%})")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, default=str)

"""Summarise a capture: packets, bytes, protocols, top talkers, per-second rates, vectors."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from traffic.parsers.pcap import PcapError
from traffic.parsers.summary import summarize_pcap


class Command(BaseCommand):
    help = "Analyse a PCAP/PCAPNG file; --json prints the summary as JSON."
    # A file in, text out: no database, no URL, so not the system checks either (loading the
    # URLconf for them is most of what the engineer would wait for before the work starts).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--top", type=int, default=10)

    def handle(self, *args, file: str, json: bool, top: int, **options) -> None:
        try:
            summary = summarize_pcap(file, top=top)
        except (PcapError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if json:
            self.stdout.write(_dumps(summary))
            return
        self.stdout.write(f"{summary['packets']} packets, {summary['bytes']} bytes, {summary['duration_s']:.3f} s")
        self.stdout.write("protocols: " + ", ".join(f"{k} {v}" for k, v in summary["protocols"].items()))
        for source in summary["top_sources"]:
            error = f" (up to {source['max_error']} more)" if source.get("max_error") else ""
            self.stdout.write(f"  {source['ip']:<40} {source['packets']:>10} packets{error}")
        for figure, how in summary.get("estimated", {}).items():
            self.stdout.write(f"estimated: {figure}: {how}")
        for vector in summary["vectors"]:
            self.stdout.write(f"vector: {vector['name']} ({vector['confidence']})")
        for error in summary.get("errors", []):
            self.stderr.write(f"problem: {error}")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, default=str)

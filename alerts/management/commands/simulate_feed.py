"""Post realistic alerts of every format through the real ingest endpoint (the demo's live feed)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand

from alerts import simulator


class Command(BaseCommand):
    help = "Simulate attacks: POST Cloudflare, Alertmanager, FastNetMon, Suricata and CrowdSec alerts to /ingest/."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the console's base URL")
        parser.add_argument("--count", type=int, default=50, help="deliveries to send (ignored with --forever)")
        parser.add_argument("--forever", action="store_true")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")

    def handle(self, *args, url: str, count: int, forever: bool, interval: float, **options) -> None:
        sent = 0
        stream = simulator.run()
        # Wait for the web process to come up (make run starts both at once).
        for _ in range(60):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except (urllib.error.URLError, OSError):
                time.sleep(1)
        for round_ in stream:
            for slug, body in round_:
                status = self.post(url, slug, body)
                sent += 1
                if options.get("verbosity", 1) > 1:
                    self.stdout.write(f"{slug}: {status}")
            if not forever and sent >= count:
                break
            time.sleep(interval)
        self.stdout.write(f"sent {sent} deliveries")

    def post(self, url: str, slug: str, body: bytes) -> int:
        request = urllib.request.Request(
            f"{url}/ingest/{slug}/",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {simulator.demo_feed_token(slug)}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0

"""A simulated alert feed for the demo: attacks that start, peak and end, in every format.

Each scenario is an attack on one of the demo customers' assets, told through the feed
that would really report it (Cloudflare for zones and Magic Transit prefixes,
FastNetMon and Alertmanager from the edge, Suricata and CrowdSec from the customer's
own sensors). Repeats and the occasional malformed delivery are part of the show.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from alerts.formats import examples

DEMO_FEEDS = [
    # slug, name, format, customer slug (None: mapped by asset)
    ("cloudflare", "Cloudflare DDoS notifications", "cloudflare", None),
    ("edge-alertmanager", "Edge Alertmanager", "alertmanager", None),
    ("fastnetmon", "FastNetMon (scrubbing edge)", "fastnetmon", None),
    ("northwind-suricata", "Northwind Suricata IDS", "suricata", "northwind-shop"),
    ("marta-crowdsec", "Marta's CrowdSec", "crowdsec", "martas-kitchen"),
]


def demo_feed_token(slug: str) -> str:
    """The demo feeds' tokens derive from SECRET_KEY, so the simulator knows them without storing them."""
    return hmac.new(settings.SECRET_KEY.encode(), f"demo-feed:{slug}".encode(), hashlib.sha256).hexdigest()[:40]


@dataclass
class Scenario:
    """One attack in progress: which feed tells it, against what, how big, for how long."""

    kind: str
    feed: str
    started: datetime
    duration_s: float
    peak: float
    target: str
    seed: str = field(default_factory=lambda: uuid.uuid4().hex)
    ended: bool = False

    def level(self, now: datetime) -> float:
        """Ramp up, hold near the peak, ramp down: the shape of most volumetric attacks."""
        progress = min(1.0, max(0.0, (now - self.started).total_seconds() / self.duration_s))
        return self.peak * (0.25 + 0.75 * math.sin(math.pi * progress)) * random.uniform(0.9, 1.1)

    def over(self, now: datetime) -> bool:
        return (now - self.started).total_seconds() >= self.duration_s


KINDS = [
    # kind, feed, targets, peak range
    ("cf_l4", "cloudflare", ["203.0.113.10", "203.0.113.25", "198.51.100.7"], (2e6, 4e7)),
    ("cf_l7", "cloudflare", ["app.helio.example", "api.helio.example", "shop.northwind.example"], (2e4, 6e5)),
    ("am_syn", "edge-alertmanager", ["203.0.113.80", "198.51.100.12"], (5e5, 8e6)),
    ("fnm_udp", "fastnetmon", ["203.0.113.45", "198.51.100.99"], (3e5, 5e6)),
    ("sur_http", "northwind-suricata", ["198.51.100.210"], (1, 1)),
    ("cs_bf", "marta-crowdsec", ["martas-kitchen.example"], (1, 1)),
]
L4_VECTORS = [
    ("UDP Flood", "UDP", 53),
    ("SYN Flood", "TCP", 443),
    ("DNS Amplification", "UDP", 53),
    ("ACK Flood", "TCP", 80),
]
ATTACKER_IPS = ["185.220.101.47", "45.155.205.233", "91.240.118.172", "193.42.33.14", "80.82.77.139", "162.247.74.7"]


def new_scenario(now: datetime, rng: random.Random) -> Scenario:
    kind, feed, targets, (low, high) = rng.choice(KINDS)
    return Scenario(
        kind=kind,
        feed=feed,
        started=now,
        duration_s=rng.uniform(60, 420),
        peak=rng.uniform(low, high),
        target=rng.choice(targets),
    )


def deliveries(scenario: Scenario, now: datetime) -> list[bytes]:
    """The bodies the scenario's feed sends at this moment (START/updates/END)."""
    ending = scenario.over(now)
    level = scenario.level(now)
    rng = random.Random(scenario.seed)
    if scenario.kind == "cf_l4":
        vector, proto, port = rng.choice(L4_VECTORS)
        payload = examples.cloudflare_l4(
            event="END" if ending else "START",
            target_ip=scenario.target,
            target_port=port,
            vector=vector,
            protocol=proto,
            pps=level,
            mbps=level * 900 * 8 / 1e6,
            correlation_id=scenario.seed,
            attack_id=scenario.seed[:16],
            at=scenario.started,
        )
        return [examples.body(payload)]
    if scenario.kind == "cf_l7":
        zone = scenario.target.split(".", 1)[1] if scenario.target.count(".") > 1 else scenario.target
        payload = examples.cloudflare_l7(
            event="END" if ending else "START",
            zone=zone,
            hostname=scenario.target,
            rps=level,
            correlation_id=scenario.seed,
            attack_id=scenario.seed[:16],
            at=scenario.started,
        )
        return [examples.body(payload)]
    if scenario.kind == "am_syn":
        alert = examples.alertmanager_alert(
            status="resolved" if ending else "firing",
            target_ip=scenario.target,
            zone="first-harbor-bank",
            pps=level,
            fingerprint=scenario.seed[:16],
            starts_at=scenario.started,
            ends_at=now if ending else None,
        )
        return [examples.body(examples.alertmanager_notification(alert))]
    if scenario.kind == "fnm_udp":
        payload = examples.fastnetmon_json(
            ip=scenario.target,
            action="unban" if ending else "ban",
            attack_type="udp_flood",
            protocol="udp",
            pps=int(level),
            bytes_per_second=int(level * 1100),
            attack_uuid=str(uuid.UUID(scenario.seed)),
        )
        return [examples.body(payload)]
    if scenario.kind == "sur_http":
        if ending:
            return []
        events = [
            examples.suricata_alert(
                signature=rng.choice(
                    ["ET WEB_SERVER Possible SQL Injection Attempt UNION SELECT", "ET DOS Possible HTTP Flood Inbound"]
                ),
                src_ip=rng.choice(ATTACKER_IPS),
                dest_ip=scenario.target,
                dest_port=443,
                app_proto="http",
                at=now,
            )
            for _ in range(rng.randint(2, 6))
        ]
        return [examples.eve_lines(*events)]
    if scenario.kind == "cs_bf":
        if ending:
            return []
        payload = [
            examples.crowdsec_alert(
                source_ip=rng.choice(ATTACKER_IPS),
                target_fqdn=scenario.target,
                start=now,
                alert_uuid=str(uuid.uuid4()),
            )
        ]
        return [examples.body(payload)]
    return []


MALFORMED = [b'{"alert_type": "dos_attack_l4", "data": {', b"<html>502 Bad Gateway</html>", b'{"alerts": 7}']


def run(now_fn=None, rng: random.Random | None = None, max_active: int = 4) -> Iterator[list[tuple[str, bytes]]]:
    """Endless rounds of (feed slug, body) deliveries: the simulator's behaviour, testable without HTTP."""
    rng = rng or random.Random()
    now_fn = now_fn or (lambda: datetime.now(UTC))
    active: list[Scenario] = []
    while True:
        now = now_fn()
        round_: list[tuple[str, bytes]] = []
        if len(active) < max_active and rng.random() < 0.35:
            active.append(new_scenario(now, rng))
        for scenario in list(active):
            round_.extend((scenario.feed, body) for body in deliveries(scenario, now))
            if scenario.over(now):
                active.remove(scenario)
        if rng.random() < 0.03:
            round_.append((rng.choice(DEMO_FEEDS[:3])[0], rng.choice(MALFORMED)))
        yield round_


def history(days: int = 30, rng: random.Random | None = None) -> Iterator[tuple[str, bytes, datetime]]:
    """Past attacks for the demo's history (baselines, reports): each a START and an END."""
    rng = rng or random.Random(7)
    now = datetime.now(UTC)
    for _ in range(days):
        start = now - timedelta(days=rng.uniform(1, days), minutes=rng.uniform(0, 600))
        scenario = new_scenario(start, rng)
        scenario.peak = scenario.peak / 3  # the usual, smaller attacks
        if scenario.kind in ("sur_http", "cs_bf"):
            continue
        for moment in (
            start + timedelta(seconds=scenario.duration_s / 2),
            start + timedelta(seconds=scenario.duration_s + 1),
        ):
            for body in deliveries(scenario, moment):
                yield scenario.feed, body, moment

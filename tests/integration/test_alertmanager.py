"""Shieldwall behind the real Prometheus Alertmanager (Debian package ``prometheus-alertmanager``).

The test starts Alertmanager on 127.0.0.1 with clustering off and a webhook receiver
pointed at the live Django server's ``/ingest/<slug>/`` with a bearer token, then drives
it through its own API the way Prometheus does:

0. (second test) alerts of one group whose labels carry ``dst_ip`` and ``customer`` next
   to the router's ``instance`` become alerts with that target and customer, and two
   victims in one group are two attacks;
1. an alert fired through ``POST /api/v2/alerts`` becomes exactly one Shieldwall alert,
   mapped to the customer named by its ``customer`` label;
2. Alertmanager re-notifies (repeat_interval of 2 s): an unchanged re-notification is
   byte-identical and is a no-op; one carrying a re-rendered annotation (as Prometheus
   re-sends firing alerts with the current value) folds into the same row, whose count
   and last seen grow; never a second row;
3. the alert posted again with ``endsAt`` in the past resolves in Alertmanager, whose
   resolved notification (``send_resolved``) resolves it in Shieldwall.

Celery runs eagerly under pytest, so the parsing task runs on commit inside the live
server's thread; ``transactional_db`` lets this thread see what that one committed.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.models import Alert, Attack, Delivery, Feed
from tests.factories import CustomerFactory

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
WAIT_S = 30  # every wait below is bounded by this

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        not ALERTMANAGER.exists(),
        reason=f"needs the real Alertmanager at {ALERTMANAGER} (apt-get install prometheus-alertmanager)",
    ),
]

CONFIG = """
route:
  receiver: shieldwall
  group_by: {group_by}
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: shieldwall
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait_until(what: str, check: Callable[[], Any], timeout: float = WAIT_S, log: Callable[[], str] = str) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f}s for {what}\n{log()}")
        time.sleep(0.2)


class Alertmanager:
    """One Alertmanager process on 127.0.0.1, and what the test asks of it."""

    def __init__(self, workdir: Path, webhook_url: str, token: str, group_by: str = "[alertname, target_ip]") -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(CONFIG.format(url=json.dumps(webhook_url), token=json.dumps(token), group_by=group_by))
        self.storage = workdir / "data"
        self.storage.mkdir()
        self.log_path = workdir / "alertmanager.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(ALERTMANAGER),
                    f"--config.file={self.config}",
                    f"--storage.path={self.storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",  # no gossip: a single, local instance
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until("Alertmanager to be ready", self._ready, log=self.log)

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"Alertmanager exited with {self.process.returncode}\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        try:
            return "--- alertmanager log (tail)\n" + "\n".join(self.log_path.read_text().splitlines()[-40:])
        except OSError:
            return ""

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.base}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.read()

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base}/api/v2/alerts?active=true&inhibited=true", timeout=5) as response:
            return json.loads(response.read())

    def webhook_notifications(self) -> tuple[int, int]:
        """(sent, failed) notifications of the webhook integration, from Alertmanager's metrics."""
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=5) as response:
            text = response.read().decode()

        def metric(name: str) -> int:
            found = re.search(rf'^{name}{{integration="webhook"}} (\S+)$', text, re.M)
            return int(float(found.group(1))) if found else 0

        return metric("alertmanager_notifications_total"), metric("alertmanager_notifications_failed_total")


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    started: list[Alertmanager] = []

    def start(webhook_url: str, token: str, **options: str) -> Alertmanager:
        manager = Alertmanager(tmp_path, webhook_url, token, **options)
        started.append(manager)
        manager.start()
        return manager

    yield start
    for manager in started:
        manager.stop()


def test_alert_through_real_alertmanager_is_one_alert_deduplicated_then_resolved(
    transactional_db, live_server, settings, alertmanager_factory
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    customer = CustomerFactory(slug="initech", name="Initech", plan="enterprise")
    feed = Feed(name="Prometheus (integration)", slug="prometheus-it", format=Feed.Format.ALERTMANAGER)
    token = feed.set_secret()
    feed.save()

    # The live server binds an IPv4 socket on "localhost": name the address itself so
    # Alertmanager's resolver cannot pick ::1.
    port = live_server.thread.port
    manager = alertmanager_factory(f"http://127.0.0.1:{port}/ingest/{feed.slug}/", token)

    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    labels = {
        "alertname": "EdgeSynFloodDetected",
        "severity": "critical",
        "target_ip": "192.0.2.77",  # in no customer's prefix: only the label maps it
        "customer": customer.slug,
        "vector": "syn_flood",
        "layer": "L4",
        "instance": "edge-fra1:9100",
        "job": "ddos-detector",
    }
    annotations = {"summary": "SYN flood towards 192.0.2.77", "description": "SYN rate above 1 Mpps"}

    def fire() -> None:
        # What Prometheus sends for a firing alert, re-sent on every evaluation.
        manager.post_alerts(
            [
                {
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": _rfc3339(started),
                    "endsAt": _rfc3339(datetime.now(UTC) + timedelta(minutes=5)),
                    "generatorURL": "http://prometheus.invalid/graph?g0.expr=syn_pps",
                }
            ]
        )

    def describe() -> str:
        rows = list(Alert.objects.values("id", "fingerprint", "status", "count", "resolved_at"))
        deliveries = list(Delivery.objects.values("id", "status", "error", "alerts_created", "alerts_updated"))
        return f"alerts: {rows}\ndeliveries: {deliveries}\n{manager.log()}"

    # 1. Fired once: exactly one Shieldwall alert, for the labelled customer.
    fire()
    wait_until("the first notification to become an alert", lambda: Alert.objects.exists(), log=describe)
    alert = Alert.objects.get()
    assert alert.feed_id == feed.pk
    assert alert.customer_id == customer.pk, "the customer label maps the alert to the seeded customer"
    assert alert.asset_id is None
    assert alert.vector == "syn_flood" and alert.severity == "critical" and alert.layer == "L4"
    assert alert.target_ip == "192.0.2.77"
    assert alert.title == "SYN flood towards 192.0.2.77"
    assert alert.status == Alert.Status.NEW and alert.resolved_at is None
    am_fingerprint = manager.alerts()[0]["fingerprint"]
    assert alert.fingerprint == am_fingerprint == alert.external_id

    # 2a. Alertmanager re-notifies the unchanged group every repeat_interval. Its body is
    # byte-identical (Alertmanager zeroes a firing alert's endsAt), so Shieldwall takes it
    # for a retry of the same delivery: still one alert, nothing rejected.
    wait_until(
        "Alertmanager to re-notify the unchanged alert",
        lambda: manager.webhook_notifications()[0] >= 2,
        log=describe,
    )
    assert manager.webhook_notifications()[1] == 0, describe()
    assert Alert.objects.count() == 1, describe()
    assert not Delivery.objects.exclude(status=Delivery.Status.PROCESSED).exists(), describe()

    # 2b. Prometheus re-sends the firing alert with its annotations re-rendered on the
    # current value; the next re-notification carries them: a new delivery that folds
    # into the same row (count and last seen grow), never a second row.
    alert.refresh_from_db()
    first_count, first_seen = alert.count, alert.last_seen
    annotations["description"] = "SYN rate at 2.4 Mpps"
    fire()

    def renotified_with_new_value() -> bool:
        return Delivery.objects.filter(feed=feed, status=Delivery.Status.PROCESSED).count() >= 2

    wait_until("a re-notification carrying the new annotation", renotified_with_new_value, log=describe)
    assert manager.webhook_notifications()[1] == 0, describe()
    assert Alert.objects.count() == 1, describe()
    alert.refresh_from_db()
    assert alert.count == first_count + 1 and alert.last_seen > first_seen
    assert alert.raw["annotations"]["description"] == "SYN rate at 2.4 Mpps", "raw is the newest payload"
    assert alert.resolved_at is None and alert.customer_id == customer.pk
    feed.refresh_from_db()
    assert feed.delivery_count >= 2 and feed.error_count == 0
    assert not Delivery.objects.exclude(status=Delivery.Status.PROCESSED).exists(), describe()

    # 3. Resolved in Alertmanager (endsAt in the past) -> resolved here.
    manager.post_alerts(
        [
            {
                "labels": labels,
                "annotations": annotations,
                "startsAt": _rfc3339(started),
                "endsAt": _rfc3339(datetime.now(UTC) - timedelta(seconds=1)),
            }
        ]
    )

    def resolved() -> bool:
        return Alert.objects.filter(pk=alert.pk, resolved_at__isnull=False).exists()

    wait_until("the resolved notification to resolve the alert", resolved, log=describe)
    assert Alert.objects.count() == 1, describe()
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.ended_at is not None
    assert alert.customer_id == customer.pk


def test_dst_ip_and_customer_labels_through_real_alertmanager_two_victims_two_attacks(
    transactional_db, live_server, settings, alertmanager_factory
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    initech = CustomerFactory(slug="initech", name="Initech", plan="enterprise")
    globex = CustomerFactory(slug="globex", name="Globex")
    feed = Feed(name="Prometheus (labels)", slug="prometheus-labels", format=Feed.Format.ALERTMANAGER)
    token = feed.set_secret()
    feed.save()
    port = live_server.thread.port
    # Grouped by alert name only: both victims arrive in one notification.
    manager = alertmanager_factory(f"http://127.0.0.1:{port}/ingest/{feed.slug}/", token, group_by="[alertname]")

    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    victims = {"192.0.2.77": initech, "198.51.100.200": globex}

    def alert(dst_ip: str, customer: str) -> dict[str, Any]:
        return {
            "labels": {
                "alertname": "DDoSInboundFlood",
                "severity": "critical",
                "instance": "edge-fra1.net.example:9100",  # the router that measured it
                "job": "ddos-exporter",
                "dst_ip": dst_ip,
                "customer": customer,
                "vector": "udp_flood",
            },
            "annotations": {"summary": f"Inbound UDP flood to {dst_ip}"},
            "startsAt": _rfc3339(started),
            "endsAt": _rfc3339(datetime.now(UTC) + timedelta(minutes=5)),
        }

    manager.post_alerts([alert(ip, customer.slug) for ip, customer in victims.items()])

    def describe() -> str:
        rows = list(Alert.objects.values("id", "target_ip", "target_host", "customer_id", "attack_id"))
        deliveries = list(Delivery.objects.values("id", "status", "error", "alerts_created"))
        return f"alerts: {rows}\ndeliveries: {deliveries}\n{manager.log()}"

    wait_until("both alerts to arrive", lambda: Alert.objects.filter(feed=feed).count() >= 2, log=describe)
    assert Alert.objects.filter(feed=feed).count() == 2, describe()
    for ip, customer in victims.items():
        row = Alert.objects.get(feed=feed, target_ip=ip)
        assert row.customer_id == customer.pk, describe()
        assert row.target_host == "", "the router's instance label is not the target"
        assert row.direction_rule == "Alertmanager label dst_ip names the target"
    attacks = Attack.objects.filter(alerts__feed=feed).distinct()
    assert attacks.count() == 2, describe()
    assert {(a.target, a.customer_id) for a in attacks} == {(ip, c.pk) for ip, c in victims.items()}

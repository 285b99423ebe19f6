"""Nothing lost: 100,000 alerts through the webhook while one part of the stack fails.

Each test sends 100,000 Suricata alerts (400 deliveries of 250; 50,000 on RabbitMQ, see
conftest.ALERTS) at a steady pace from senders that behave like Alertmanager or a Logpush
job: a delivery is retried until the webhook answers 2xx. Part-way, one fault is injected
by process id. At the end the feed must hold exactly the alerts sent, each seen once, with
no delivery left pending, and every delivery id the webhook answered 202 with must be in
the database. Every test runs once per broker (Redis, RabbitMQ).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
import pytest

from bench.harness import eve_bodies, post, wait_for

from .conftest import FEEDS, Stack

pytestmark = [pytest.mark.chaos, pytest.mark.root]

PER_DELIVERY = 250
# Source addresses of one test's alerts start this far from the previous test's.
ALERTS_APART = 100_000
SENDERS = 2


@dataclass
class Sending:
    """Senders that retry every delivery until it is accepted, and what they were told."""

    stack: Stack
    slug: str
    bodies: list[bytes]
    per_second: float
    statuses: Counter = field(default_factory=Counter)
    accepted_ids: set[int] = field(default_factory=set)
    accepted_at: list[float] = field(default_factory=list)
    unavailable_at: list[float] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    accepted: int = 0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(SENDERS)]
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "senders still retrying: webhook never came back"

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.bodies):
                return None
            index = self._next
            self._next += 1
            return index

    def _send(self) -> None:
        path, token = f"/ingest/{self.slug}/", self.stack.tokens[self.slug]
        while (index := self._take()) is not None:
            # A steady offered load, so that the fault lands in the middle of the ingest.
            due = self.started + index / self.per_second
            time.sleep(max(0.0, due - time.monotonic()))
            while True:
                try:
                    status, answer, _seconds = post(self.stack.port, path, token, self.bodies[index], timeout=30)
                except OSError as exc:  # refused, reset or timed out: the sender retries
                    with self._lock:
                        self.statuses[type(exc).__name__] += 1
                    time.sleep(0.5)
                    continue
                with self._lock:
                    self.statuses[status] += 1
                if status == 202:
                    with self._lock:
                        self.accepted_ids.add(orjson.loads(answer)["delivery"])
                        self.accepted_at.append(time.monotonic())
                        self.accepted += 1
                    break
                if status == 503:
                    with self._lock:
                        self.unavailable_at.append(time.monotonic())
                else:
                    with self._lock:
                        self.other.append(f"HTTP {status}: {answer[:200]!r}")
                time.sleep(0.5)


def _run_fault(stack: Stack, slug: str, first_source: int, per_second: float, inject) -> dict:
    """Send, inject the fault when ``inject(sending)`` decides, wait for the outcome, return figures."""
    feed_id = stack.probe.feed_id(slug)
    alerts = stack.alerts
    bodies = eve_bodies(alerts, PER_DELIVERY, first_source=first_source)
    restarts_before = len(stack.restarts)
    sending = Sending(stack, slug, bodies, per_second)
    started = time.monotonic()
    sending.start()
    detail = inject(sending)
    sending.join(timeout=300)

    def complete() -> bool:
        try:
            figures = stack.probe.figures(feed_id)
        except Exception:  # PostgreSQL may still be coming back
            return False
        return figures.deliveries >= len(bodies) and figures.pending == 0 and figures.alerts >= alerts

    try:
        wait_for(f"{slug}: every alert stored", complete, 300, stack.services(), step=0.5)
    except SystemExit as exc:
        figures = stack.probe.figures(feed_id)
        pytest.fail(f"{exc}: {figures}\n{stack.logs()}")
    seconds = time.monotonic() - started
    figures = stack.probe.figures(feed_id)
    stored_ids = stack.probe.one(
        "SELECT count(*) FROM alerts_delivery WHERE feed_id = %s AND id = ANY(%s)",
        (feed_id, sorted(sending.accepted_ids)),
    )
    refused = sum(n for key, n in sending.statuses.items() if isinstance(key, str))
    result = {
        "fault": slug.removeprefix("chaos-"),
        "sent": alerts,
        "stored": figures.alerts,
        "duplicates": (figures.alerts - figures.distinct_fingerprints) + (figures.sightings - figures.alerts),
        "pending": figures.pending,
        "deliveries": figures.deliveries,
        "rejected": figures.rejected,
        "accepted": sending.accepted,
        "unavailable": sending.statuses[503],
        "refused": refused,
        "other": len(sending.other),
        "accepted_ids_stored": stored_ids,
        "accepted_ids": len(sending.accepted_ids),
        "seconds": seconds,
        "detail": detail,
        "restarts": stack.restarts[restarts_before:],
    }
    stack.figures.append(result)
    assert sending.other == [], f"answers other than 202/503: {sending.other[:5]}"
    assert stored_ids == len(sending.accepted_ids) == len(bodies), "a 202 for a delivery that is not stored"
    assert figures.deliveries == len(bodies)
    assert figures.pending == 0 and figures.rejected == 0
    assert figures.alerts == figures.distinct_fingerprints == alerts
    assert figures.sightings == alerts, "an alert was counted twice: a delivery was processed twice"
    return result


def test_worker_killed_mid_ingest_a_new_worker_finishes(stack: Stack) -> None:
    slug = FEEDS[0]
    feed_id = stack.probe.feed_id(slug)

    def kill_worker(sending: Sending) -> str:
        wait_for("a quarter of the alerts stored", lambda: _alerts(stack, feed_id) >= stack.alerts // 4, 120, [])
        killed = stack.worker
        stored_at_kill = _alerts(stack, feed_id)
        stack.paused = True  # this test starts the new worker itself
        killed.kill(signal.SIGKILL)  # the whole prefork group: main process and its children
        time.sleep(3)
        stack.start_worker()
        stack.paused = False
        return (
            f"worker pid {killed.pid} and its pool killed with SIGKILL at {stored_at_kill:,} alerts stored, "
            f"{sending.accepted} deliveries accepted; a new worker (pid {stack.worker.pid}) started 3 s later"
        )

    result = _run_fault(stack, slug, first_source=0, per_second=12, inject=kill_worker)
    assert result["stored"] == stack.alerts


def test_broker_stopped_for_30_seconds_webhook_keeps_accepting(stack: Stack) -> None:
    """Redis: killed with no persistence, so every queued message is gone with it and the
    sweeper re-enqueues the pending deliveries. RabbitMQ: the node killed (SIGKILL, as in a
    crash); its quorum queues keep what was confirmed, unacknowledged tasks come back."""
    slug = FEEDS[1]
    window: dict[str, float] = {}
    deliveries = stack.alerts // PER_DELIVERY
    before = deliveries // 5

    def stop_broker(sending: Sending) -> str:
        wait_for("a fifth of the deliveries accepted", lambda: sending.accepted >= before, 120, [])
        window["down"] = time.monotonic()
        stack.broker_service.kill(signal.SIGKILL)
        time.sleep(30)
        window["up"] = time.monotonic()
        stack.start_broker()
        window["answering"] = time.monotonic()
        accepted_while_down = sum(1 for t in sending.accepted_at if window["down"] <= t <= window["up"])
        window["accepted_while_down"] = accepted_while_down
        return (
            f"{stack.broker} (pid {stack.broker_service.pid} now) killed for 30 s after {before} deliveries, "
            f"answering again {window['answering'] - window['up']:.1f} s after its start; "
            f"{accepted_while_down} deliveries answered 202 while it was down; the sweeper re-enqueued the rest"
        )

    result = _run_fault(stack, slug, first_source=ALERTS_APART, per_second=8, inject=stop_broker)
    # At 8 a second, a 30 s outage spans ~240 deliveries when that many are left to send.
    expected = min(240, deliveries - before) // 2
    assert window["accepted_while_down"] >= expected, f"the webhook stopped accepting while {stack.broker} was down"
    assert result["unavailable"] == 0, f"the webhook refused deliveries while only {stack.broker} was down"


def test_postgres_restarted_webhook_answers_503_never_2xx_unstored(stack: Stack) -> None:
    slug = FEEDS[2]
    window: dict[str, float] = {}

    before = stack.alerts // PER_DELIVERY // 4

    def restart_postgres(sending: Sending) -> str:
        wait_for("a quarter of the deliveries accepted", lambda: sending.accepted >= before, 120, [])
        window["down"] = time.monotonic()
        # Immediate shutdown: backends are cut off mid-transaction, as in a crash.
        stack.postgres.kill(signal.SIGQUIT)
        time.sleep(10)
        stack.start_postgres()
        window["up"] = time.monotonic()
        return (
            f"PostgreSQL stopped (immediate shutdown) after {before} deliveries and started again "
            f"{window['up'] - window['down']:.0f} s later; the webhook answered 503 meanwhile"
        )

    result = _run_fault(stack, slug, first_source=2 * ALERTS_APART, per_second=12, inject=restart_postgres)
    assert result["unavailable"] > 0, "no 503 while PostgreSQL was down: were deliveries refused some other way?"


def _alerts(stack: Stack, feed_id: int) -> int:
    return stack.probe.one("SELECT count(*) FROM alerts_alert WHERE feed_id = %s", (feed_id,))

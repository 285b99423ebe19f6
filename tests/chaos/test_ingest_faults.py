"""Nothing lost: 100,000 alerts through the webhook while one part of the stack fails.

Each test sends 100,000 Suricata alerts (400 deliveries of 250) at a steady pace from
senders that behave like Alertmanager or a Logpush job: a delivery is retried until the
webhook answers 2xx. Half-way, one fault is injected by process id. At the end the feed
must hold exactly 100,000 alerts, each seen once, with no delivery left pending, and
every delivery id the webhook answered 202 with must be in the database.
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

ALERTS = 100_000
PER_DELIVERY = 250
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


def _run_fault(stack: Stack, slug: str, first_source: int, per_second: float, inject) -> dict:  # noqa: ANN001
    """Send, inject the fault when ``inject(sending)`` decides, wait for the outcome, return figures."""
    feed_id = stack.probe.feed_id(slug)
    bodies = eve_bodies(ALERTS, PER_DELIVERY, first_source=first_source)
    restarts_before = len(stack.restarts)
    sending = Sending(stack, slug, bodies, per_second)
    started = time.monotonic()
    sending.start()
    detail = inject(sending)
    sending.join(timeout=300)

    def complete() -> bool:
        try:
            figures = stack.probe.figures(feed_id)
        except Exception:  # noqa: BLE001 - PostgreSQL may still be coming back
            return False
        return figures.deliveries >= len(bodies) and figures.pending == 0 and figures.alerts >= ALERTS

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
        "sent": ALERTS,
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
    assert figures.alerts == figures.distinct_fingerprints == ALERTS
    assert figures.sightings == ALERTS, "an alert was counted twice: a delivery was processed twice"
    return result


def test_worker_killed_mid_ingest_a_new_worker_finishes(stack: Stack) -> None:
    slug = FEEDS[0]
    feed_id = stack.probe.feed_id(slug)

    def kill_worker(sending: Sending) -> str:
        wait_for("a quarter of the alerts stored", lambda: _alerts(stack, feed_id) >= ALERTS // 4, 120, [])
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
    assert result["stored"] == ALERTS


def test_redis_stopped_for_30_seconds_webhook_keeps_accepting(stack: Stack) -> None:
    slug = FEEDS[1]
    window: dict[str, float] = {}

    def stop_redis(sending: Sending) -> str:
        wait_for("a fifth of the deliveries accepted", lambda: sending.accepted >= 80, 120, [])
        window["down"] = time.monotonic()
        stack.redis.kill(signal.SIGKILL)  # no persistence: every queued message is gone with it
        time.sleep(30)
        window["up"] = time.monotonic()
        stack.start_redis()
        accepted_while_down = sum(1 for t in sending.accepted_at if window["down"] <= t <= window["up"])
        window["accepted_while_down"] = accepted_while_down
        return (
            f"Redis (pid {stack.redis.pid} now) killed for 30 s after {80} deliveries; "
            f"{accepted_while_down} deliveries answered 202 while it was down; the sweeper re-enqueued the rest"
        )

    result = _run_fault(stack, slug, first_source=ALERTS, per_second=8, inject=stop_redis)
    assert window["accepted_while_down"] >= 100, "the webhook stopped accepting while Redis was down"
    assert result["unavailable"] == 0, "the webhook refused deliveries while only Redis was down"


def test_postgres_restarted_webhook_answers_503_never_2xx_unstored(stack: Stack) -> None:
    slug = FEEDS[2]
    window: dict[str, float] = {}

    def restart_postgres(sending: Sending) -> str:
        wait_for("a quarter of the deliveries accepted", lambda: sending.accepted >= 100, 120, [])
        window["down"] = time.monotonic()
        # Immediate shutdown: backends are cut off mid-transaction, as in a crash.
        stack.postgres.kill(signal.SIGQUIT)
        time.sleep(10)
        stack.start_postgres()
        window["up"] = time.monotonic()
        return (
            f"PostgreSQL stopped (immediate shutdown) after {100} deliveries and started again "
            f"{window['up'] - window['down']:.0f} s later; the webhook answered 503 meanwhile"
        )

    result = _run_fault(stack, slug, first_source=2 * ALERTS, per_second=12, inject=restart_postgres)
    assert result["unavailable"] > 0, "no 503 while PostgreSQL was down: were deliveries refused some other way?"


def _alerts(stack: Stack, feed_id: int) -> int:
    return stack.probe.one("SELECT count(*) FROM alerts_alert WHERE feed_id = %s", (feed_id,))

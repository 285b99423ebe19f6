"""The attack fold's row lock must not block other deliveries' commits (PostgreSQL only).

Each alert row references its attack; PostgreSQL checks that foreign key at COMMIT with a
FOR KEY SHARE lock on the attack. A fold holding FOR UPDATE would make every other
delivery of that attack wait, and deadlock with them over the feed row (bench/ingest.py
found it); FOR NO KEY UPDATE, the lock a plain UPDATE takes, does not conflict.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from alerts import services
from alerts.formats import ParsedAlert
from alerts.models import Alert, Attack, Feed

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def _parsed(n: int) -> ParsedAlert:
    return ParsedAlert(
        fingerprint=f"lock-{n}", title=f"UDP flood {n}", vector="udp_flood", target_ip="203.0.113.10", pps=1e5 * n
    )


def test_a_delivery_commits_while_another_holds_the_attacks_fold_lock(customer_a):
    feed = Feed(name="f", slug="f", format="generic")
    feed.set_secret()
    feed.save()
    with transaction.atomic():
        services.alerts_upsert(feed=feed, delivery=None, parsed=[_parsed(1)])
    attack = Attack.objects.get()
    holding, release, outcome = threading.Event(), threading.Event(), {}

    def fold_and_wait() -> None:
        try:
            with transaction.atomic():
                services.alerts_upsert(feed=feed, delivery=None, parsed=[_parsed(2)])  # locks the attack
                holding.set()
                release.wait(timeout=20)
        finally:
            connections.close_all()

    def other_delivery() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '3s'")
                now = timezone.now()
                Alert.objects.create(
                    feed=feed,
                    attack=attack,
                    fingerprint="other",
                    title="other",
                    event_time=now,
                    first_seen=now,
                    last_seen=now,
                )  # its foreign-key check on the attack runs at COMMIT
            outcome["other"] = "committed"
        except Exception as exc:  # the assertion reports it
            outcome["other"] = repr(exc)
        finally:
            connections.close_all()

    folder = threading.Thread(target=fold_and_wait)
    folder.start()
    assert holding.wait(timeout=20)
    other = threading.Thread(target=other_delivery)
    other.start()
    other.join(timeout=20)
    release.set()
    folder.join(timeout=20)
    assert outcome.get("other") == "committed", outcome
    attack.refresh_from_db()
    assert attack.alert_count == 2  # the folder's alert; "other" went in behind the fold's back

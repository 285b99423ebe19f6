"""The queue's first page and an attack's page run a fixed number of queries, whatever the alerts behind them."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

from alerts.models import Alert, Attack, Feed
from tests.factories import CustomerFactory
from tests.querycount import assert_same_queries_at_3n

pytestmark = pytest.mark.django_db
SERIAL = count()


@pytest.fixture
def feed(db):
    feed = Feed(name="Cloudflare", slug="cloudflare", format="cloudflare")
    feed.set_secret()
    feed.save()
    return feed


def open_alerts(feed, attack, k, *, customer=None, assignee=None):
    """``k`` open alerts as the Cloudflare feed writes them, some assigned, some of an attack, one unassigned."""
    now = timezone.now()
    for _ in range(k):
        i = next(SERIAL)
        Alert.objects.create(
            feed=feed,
            customer=None if i % 7 == 0 else (customer or attack.customer),
            attack=attack if i % 2 else None,
            fingerprint=f"fp-{i}",
            title=f"udp_flood against 203.0.113.{i % 250} <script>alert({i})</script>",
            layer="L4",
            vector="udp_flood",
            severity=["critical", "high", "medium"][i % 3],
            target_ip=f"203.0.113.{i % 250}",
            bps=1e9 + i,
            pps=1e5 + i,
            event_time=now - timedelta(minutes=i),
            first_seen=now - timedelta(minutes=i),
            last_seen=now - timedelta(seconds=i),
            status="acknowledged" if i % 3 == 0 else "new",
            assignee=assignee if i % 4 == 0 else None,
            urgency=10 + i % 90,
            urgency_reasons=["critical", "ongoing"],
        )


@pytest.fixture
def attack(customer_a):
    now = timezone.now()
    return Attack.objects.create(
        customer=customer_a,
        target="203.0.113.10",
        title="UDP flood on 203.0.113.10",
        vectors=["udp_flood"],
        layer="L4",
        severity="critical",
        started_at=now - timedelta(hours=2),
        last_seen=now,
        ongoing=True,
        peak_bps=18.7e9,
        urgency=90,
    )


def test_queue_first_page_runs_the_same_queries_for_n_and_3n_alerts(
    engineer_client, engineer, feed, attack, django_assert_num_queries
):
    response = assert_same_queries_at_3n(
        engineer_client,
        "/alerts/",
        lambda k: open_alerts(feed, attack, k, assignee=engineer),
        n=30,
        most=8,
        django_assert_num_queries=django_assert_num_queries,
    )
    # The header's count stays exact, and attacker-written titles stay escaped in the rows.
    assert "90 in view" in response.content.decode()
    assert b"<script>alert(" not in response.content


def test_queue_filtered_to_a_customer_and_severity_runs_the_same_queries(
    engineer_client, feed, attack, customer_a, django_assert_num_queries
):
    other = CustomerFactory(slug="globex")

    def add(k):
        open_alerts(feed, attack, k)
        open_alerts(feed, attack, k, customer=other)

    response = assert_same_queries_at_3n(
        engineer_client,
        f"/alerts/?customer={customer_a.slug}&severity=critical&severity=high",
        add,
        n=12,
        most=9,
        django_assert_num_queries=django_assert_num_queries,
    )
    shown = Alert.objects.in_queue().filter(customer=customer_a, severity__in=["critical", "high"]).count()
    assert f"{shown} in view" in response.content.decode()


def test_queue_live_poll_runs_the_same_queries(engineer_client, feed, attack, django_assert_num_queries):
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert_same_queries_at_3n(
        engineer_client,
        f"/alerts/?after={since}",
        lambda k: open_alerts(feed, attack, k),
        n=20,
        most=5,
        django_assert_num_queries=django_assert_num_queries,
        HTTP_HX_REQUEST="true",
    )


def test_attack_page_runs_the_same_queries_for_n_and_3n_alerts(
    engineer_client, feed, attack, django_assert_num_queries
):
    assert_same_queries_at_3n(
        engineer_client,
        attack.get_absolute_url(),
        lambda k: open_alerts(feed, attack, 2 * k),  # half of them belong to the attack
        n=20,
        most=10,  # + the source countries/ASNs: the alerts' source columns and the attack's samples
        django_assert_num_queries=django_assert_num_queries,
    )


def test_the_queue_rows_show_what_the_engineer_triages(engineer_client, feed, attack, engineer):
    open_alerts(feed, attack, 8, assignee=engineer)
    html = engineer_client.get("/alerts/").content.decode()
    lead = Alert.objects.in_queue().filter(attack=attack).order_by("-urgency", "-last_seen", "-id").first()
    assert f'id="alert-{lead.pk}"' in html
    assert f'data-url="/alerts/{lead.pk}/"' in html
    assert "unassigned" in html  # the alerts no customer was matched to
    assert f"· {engineer.username}" in html
    assert "&lt;script&gt;alert(" in html

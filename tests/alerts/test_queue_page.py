"""The triage queue page: urgency order, alerts folded by attack, pages past 200, select all matching."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, Attack, Feed

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed(db):
    feed = Feed(name="Cloudflare", slug="cloudflare", format="cloudflare")
    feed.set_secret()
    feed.save()
    return feed


def alert(feed, n, *, urgency=30, severity="medium", attack=None, customer=None, minutes_ago=5):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Alert(
        feed=feed,
        customer=customer,
        attack=attack,
        fingerprint=f"fp-{n}",
        title=f"alert {n}",
        layer="L4",
        vector="syn_flood",
        severity=severity,
        urgency=urgency,
        target_ip=f"203.0.113.{n % 250}",
        event_time=at,
        first_seen=at,
        last_seen=at,
        updated_at=at,
    )


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="alert-(\d+)"', html)]


def test_rows_are_in_urgency_order_not_arrival_order(engineer_client, feed):
    old_critical = alert(feed, 1, urgency=90, severity="critical", minutes_ago=30)
    new_medium = alert(feed, 2, urgency=30, minutes_ago=1)
    Alert.objects.bulk_create([new_medium, old_critical])

    html = engineer_client.get("/alerts/").content.decode()

    ids = row_ids(html)
    assert ids.index(Alert.objects.get(fingerprint="fp-1").pk) < ids.index(Alert.objects.get(fingerprint="fp-2").pk)


def test_alerts_of_one_attack_fold_under_the_most_urgent_with_a_count(engineer_client, feed, customer_a):
    now = timezone.now()
    attack = Attack.objects.create(customer=customer_a, target="203.0.113.10", started_at=now, last_seen=now)
    Alert.objects.bulk_create(
        [alert(feed, n, urgency=40 + n, attack=attack, customer=customer_a) for n in range(1, 4)]
        + [alert(feed, 9, urgency=10)]
    )
    html = engineer_client.get("/alerts/").content.decode()

    lead = Alert.objects.get(fingerprint="fp-3")
    assert re.search(rf'<tr id="alert-{lead.pk}"[^>]*class="[^"]* lead', html)
    assert len(re.findall(rf'data-group="{lead.pk}" hidden', html)) == 2
    assert re.search(rf'data-expand="{lead.pk}"\s*title="[^"]*">\+<span>2</span>', html)
    assert "4 in view" in html


def test_the_queue_pages_past_200_and_says_which_rows_are_shown(engineer_client, feed):
    Alert.objects.bulk_create([alert(feed, n, urgency=n % 100) for n in range(205)])

    first = engineer_client.get("/alerts/").content.decode()
    second = engineer_client.get("/alerts/?page=2").content.decode()

    assert len(row_ids(first)) == 200 and len(row_ids(second)) == 5
    assert not set(row_ids(first)) & set(row_ids(second))
    assert "205 in view · rows 1–200" in first and "page 2 of 2" in second


def test_select_all_matching_acts_on_every_alert_of_the_filter_not_just_the_page(engineer_client, feed):
    Alert.objects.bulk_create([alert(feed, n, severity="high" if n < 203 else "low") for n in range(205)])

    response = engineer_client.post(
        "/alerts/bulk/", {"action": "acknowledge", "all_matching": "1", "query": "severity=high", "next": "/alerts/"}
    )

    assert response.status_code == 302
    assert Alert.objects.filter(status="acknowledged").count() == 203
    assert not Alert.objects.filter(severity="low", status="acknowledged").exists()


def test_select_all_matching_stays_within_what_the_user_may_see(client, viewer, feed):
    Alert.objects.bulk_create([alert(feed, n) for n in range(3)])
    client.force_login(viewer)

    response = client.post("/alerts/bulk/", {"action": "acknowledge", "all_matching": "1", "query": ""})

    assert response.status_code == 403  # a viewer may look, not act
    assert not Alert.objects.filter(status="acknowledged").exists()

"""Pull feeds fetch through the one outbound client: what the URL answers becomes a delivery."""

import json

import pytest

from alerts.formats import examples
from alerts.models import Feed
from alerts.pull import feed_poll
from tests.console.outbound_support import Listener, listening

pytestmark = pytest.mark.django_db


@pytest.fixture
def alertmanager_api(settings):
    """Alertmanager's webhook body served by a stand-in on an allowed network."""
    body = examples.body(examples.alertmanager_notification())
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    with listening(Listener("127.0.0.2", body=body, headers={"Content-Type": "application/json"})) as server:
        yield server


def pull_feed(url: str) -> Feed:
    return Feed.objects.create(name="Pulled", slug="pulled", format="alertmanager", mode="pull", pull_url=url)


def test_a_pull_stores_the_answer_as_a_delivery(alertmanager_api):
    feed = pull_feed(f"{alertmanager_api.url}/api/v2/alerts")
    outcome = feed_poll(feed=feed)
    delivery = feed.deliveries.get()
    assert outcome == f"delivery {delivery.pk}"
    assert json.loads(bytes(delivery.body))["alerts"][0]["labels"]["alertname"] == "EdgeSynFloodDetected"
    assert alertmanager_api.hits[0].headers["Accept"] == "application/json"
    assert alertmanager_api.hits[0].headers["Host"] == f"127.0.0.2:{alertmanager_api.port}"


def test_an_http_error_is_recorded_on_the_feed(alertmanager_api):
    alertmanager_api.status = 503
    feed = pull_feed(f"{alertmanager_api.url}/api/v2/alerts")
    assert feed_poll(feed=feed) == f"HTTP 503 from {feed.pull_url}"
    feed.refresh_from_db()
    assert feed.error_count == 1 and feed.last_error == f"HTTP 503 from {feed.pull_url}"
    assert not feed.deliveries.exists()

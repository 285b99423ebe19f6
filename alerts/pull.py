"""Pull feeds: URLs polled by beat, each answer stored as a delivery like a pushed one."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from alerts.models import Feed
from alerts.services import delivery_receive
from console.outbound import OutboundRefused, request


def feed_poll(*, feed: Feed) -> str:
    """Fetch one pull feed now; returns what happened, for the feed page."""
    now = timezone.now()
    Feed.objects.filter(pk=feed.pk).update(last_pulled_at=now)
    try:
        response = request(feed.pull_url, headers={"Accept": "application/json"}, max_bytes=feed.max_body_bytes)
    except OutboundRefused as exc:
        problem = str(exc)
    else:
        if response.status != 200:
            problem = f"HTTP {response.status} from {feed.pull_url}"
        elif len(response.body) > feed.max_body_bytes:
            problem = f"answer larger than {feed.max_body_bytes} bytes"
        elif not response.body.strip():
            return "empty"
        else:
            received = delivery_receive(
                feed=feed, body=response.body, headers={"x-pulled-from": feed.pull_url}, source="pull"
            )
            return f"delivery {received.delivery.pk}" + ("" if received.created else " (unchanged)")
    Feed.objects.filter(pk=feed.pk).update(
        error_count=F("error_count") + 1, last_error=problem[:2000], last_error_at=timezone.now()
    )
    return problem


def feeds_poll() -> int:
    feeds = list(Feed.objects.due_for_pull())
    for feed in feeds:
        feed_poll(feed=feed)
    return len(feeds)

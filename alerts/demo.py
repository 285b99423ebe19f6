"""Demo feeds (with tokens the simulator knows) and a month of attack history. Idempotent."""

from __future__ import annotations

from alerts import services
from alerts.formats import parse_delivery
from alerts.models import Attack, Feed
from alerts.simulator import DEMO_FEEDS, demo_feed_token, history
from console.models import Customer


def seed_feeds() -> list[Feed]:
    feeds = []
    for slug, name, feed_format, customer_slug in DEMO_FEEDS:
        feed = Feed.objects.filter(slug=slug).first() or Feed(slug=slug)
        feed.name, feed.format = name, feed_format
        feed.customer = Customer.objects.filter(slug=customer_slug).first() if customer_slug else None
        token = demo_feed_token(slug)
        if not feed.check_secret(token):
            feed.set_secret()
            import hashlib

            feed.secret_hash = hashlib.sha256(token.encode()).hexdigest()
            feed.secret_hint = token[-4:]
        feed.save()
        feeds.append(feed)
    return feeds


def seed_history() -> int:
    """A month of past, ended attacks, so urgency has baselines and reports have data."""
    if Attack.objects.filter(ongoing=False).exists():
        return 0
    feeds = {f.slug: f for f in Feed.objects.all()}
    count = 0
    for slug, body, moment in history():
        feed = feeds[slug]
        parsed = parse_delivery(feed.format, body, feed.parse_options())
        result = services.alerts_upsert(feed=feed, delivery=None, parsed=parsed.alerts, received_at=moment)
        count += result.created
        for attack_id in result.attack_ids:
            services.attack_summarize(attack_id=attack_id)
    services.attacks_close_quiet()
    return count


def seed(stdout=None) -> dict:
    feeds = seed_feeds()
    return {"feeds": len(feeds), "history_alerts": seed_history()}

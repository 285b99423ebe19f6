from datetime import timedelta

from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Delivery


def test_healthz_shows_pending_deliveries(client, make_feed):
    feed, _ = make_feed("cloudflare")
    services.delivery_receive(feed=feed, body=examples.body(examples.cloudflare_l4()), headers={})
    body = client.get("/healthz").json()
    assert body["ingest"]["pending_deliveries"] == 1
    assert "queue_depth" in body["ingest"]


def test_feed_page_shows_the_backlog_and_the_stale_deliveries(engineer_client, make_feed, settings):
    settings.INGEST_STALE_SECONDS = 60
    feed, _ = make_feed("cloudflare")
    for cid in ("a", "b", "c"):
        services.delivery_receive(feed=feed, body=examples.body(examples.cloudflare_l4(correlation_id=cid)), headers={})
    Delivery.objects.filter(pk__in=Delivery.objects.order_by("pk").values("pk")[:2]).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    html = engineer_client.get("/feeds/").content.decode()
    backlog = html[html.index('id="ingest-backlog"') :].split("</p>")[0]
    assert "<strong>3</strong> deliveries pending" in backlog
    assert "2 waiting longer than the sweeper" in backlog
    assert "ingest queue depth" in backlog
    assert engineer_client.get("/healthz").json()["ingest"]["stale_pending_deliveries"] == 2


def test_retention_prunes_old_processed_deliveries_and_resolved_alerts_only(make_feed, settings):
    settings.RETENTION_DELIVERY_DAYS = 30
    settings.RETENTION_RESOLVED_ALERT_DAYS = 90
    feed, _ = make_feed("cloudflare")
    old = timezone.now() - timedelta(days=200)
    for cid, event in (("old", "START"), ("old", "END"), ("open", "START")):
        received = services.delivery_receive(
            feed=feed, body=examples.body(examples.cloudflare_l4(correlation_id=cid, event=event)), headers={}
        )
        services.delivery_process(delivery_id=received.delivery.pk)
    rejected = services.delivery_receive(feed=feed, body=b"{not json", headers={}).delivery
    Delivery.objects.update(received_at=old)
    Alert.objects.filter(resolved_at__isnull=False).update(resolved_at=old)
    result = services.alerts_prune()
    assert result["deliveries"] == 3
    assert Delivery.objects.filter(pk=rejected.pk).exists()  # dead letters stay until looked at
    assert Alert.objects.count() == 1 and Alert.objects.get().resolved_at is None  # open alerts stay

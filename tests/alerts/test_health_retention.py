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

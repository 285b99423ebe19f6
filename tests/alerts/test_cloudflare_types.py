"""Cloudflare notifications: every current DDoS alert type, tunnel health and BGP hijack,
START/END on ``alert_correlation_id``, and account/zone ids mapped to customers.

Envelopes follow Cloudflare's webhook payload schema (``name``, ``text``, ``data``,
``ts``, ``account_id``, ``policy_id``, ``policy_name``, ``alert_type``,
``alert_correlation_id``, ``alert_event``); the doc's own examples from
/work/shared/data are read in place.
"""

from __future__ import annotations

import copy
import json

import pytest

from alerts.formats import examples as payloads
from alerts.formats import parse_delivery
from alerts.models import Alert
from console.models import Asset
from tests.factories import AssetFactory, CustomerFactory
from tests.shared import shared_file

ACCOUNT = "9035f53656c247e895c5a6939ae8a0e0"  # the account id of Cloudflare's doc examples
ZONE_TAG = "023e105f4ecef8ad9ca31a8372d0c353"


def _envelope(alert_type: str, data: dict, *, event: str = "START", correlation: str = "c0ffee") -> dict:
    return {
        "name": f"{alert_type} policy",
        "text": f"{alert_type} notification",
        "data": data,
        "ts": 1_764_838_800,
        "account_id": ACCOUNT,
        "policy_id": "749b911ea5d04344a58e45edd099b328",
        "policy_name": f"{alert_type} policy",
        "alert_type": alert_type,
        "alert_correlation_id": correlation,
        "alert_event": f"ALERT_STATE_EVENT_{event}",
    }


L4_DATA = {"attack_vector": "SYN Flood", "protocol": "TCP", "target_ip": "203.0.113.10", "packets_per_second": 2e6}
L7_DATA = {"attack_type": "HTTP Flood", "target_hostname": "shop.initech.example", "zone_name": "initech.example"}


@pytest.mark.parametrize(
    ("alert_type", "data", "layer", "vector"),
    [
        ("dos_attack_l4", L4_DATA, "L4", "syn_flood"),
        ("advanced_ddos_attack_l4_alert", L4_DATA, "L4", "syn_flood"),
        ("fbm_volumetric_attack", {**L4_DATA, "attack_vector": "UDP Flood"}, "L4", "udp_flood"),
        ("fbm_dosd_attack", L4_DATA, "L4", "syn_flood"),
        ("dos_attack_l7", L7_DATA, "L7", "http_flood"),
        ("advanced_ddos_attack_l7_alert", {**L7_DATA, "requests_per_second": 120_000}, "L7", "http_flood"),
        ("tunnel_health_event", {"tunnel_name": "fra-ipsec-1", "new_status": "Down"}, "L3", "tunnel_health"),
        ("magic_tunnel_health_check_event", {"tunnel_name": "gre-ams-2", "status": "degraded"}, "L3", "tunnel_health"),
        ("bgp_hijack_notification", {"prefix": "203.0.113.0/24", "hijacker_asn": "AS64511"}, "L3", "bgp_hijack"),
    ],
)
def test_every_current_type_start_then_end_on_the_correlation_id(make_feed, post, alert_type, data, layer, vector):
    feed, token = make_feed("cloudflare")
    start = _envelope(alert_type, data)
    assert post(feed, token, json.dumps(start).encode()).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert (alert.layer, alert.vector, alert.resolved_at) == (layer, vector, None)
    assert alert.target, "the target Cloudflare names is kept"

    end = copy.deepcopy(start)
    end["alert_event"] = "ALERT_STATE_EVENT_END"
    end["ts"] += 600
    assert post(feed, token, json.dumps(end).encode()).status_code == 202
    assert Alert.objects.filter(feed=feed).count() == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED


def test_bgp_hijack_is_critical_with_the_hijacker_as_source():
    body = json.dumps(_envelope("bgp_hijack_notification", {"prefix": "203.0.113.0/24", "hijacker_asn": "AS64511"}))
    [alert] = parse_delivery("cloudflare", body.encode()).alerts
    assert alert.severity == "critical" and alert.target_host == "203.0.113.0/24"
    assert alert.source_asns == [64511]


def test_a_tunnel_back_to_healthy_ends_its_alert(make_feed, post):
    feed, token = make_feed("cloudflare")
    down = _envelope("tunnel_health_event", {"tunnel_name": "fra-ipsec-1", "tunnel_id": "t1", "new_status": "Down"})
    post(feed, token, json.dumps(down).encode())
    assert Alert.objects.get(feed=feed).severity == "high"
    healthy = copy.deepcopy(down)
    healthy["data"]["new_status"] = "Healthy"
    healthy["ts"] += 60
    post(feed, token, json.dumps(healthy).encode())
    assert Alert.objects.get(feed=feed).status == Alert.Status.RESOLVED


def test_the_docs_examples_map_to_the_customer_by_account_id(make_feed, post, engineer_client):
    customer = CustomerFactory(slug="example-hosting", name="Example Hosting")
    AssetFactory(customer=customer, kind=Asset.Kind.CLOUDFLARE_ACCOUNT, value=ACCOUNT)
    feed, token = make_feed("cloudflare")
    for name in ("advanced_ddos_attack_l4_alert", "advanced_ddos_attack_l7_alert"):
        body = shared_file(f"alerts/cloudflare/cf_webhook_{name}.example.json").read_bytes()
        assert post(feed, token, body).status_code == 202
    alerts = Alert.objects.filter(feed=feed)
    assert alerts.count() == 2
    assert {a.customer_id for a in alerts} == {customer.pk}
    assert all(a.asset and a.asset.kind == Asset.Kind.CLOUDFLARE_ACCOUNT for a in alerts)

    # The customer page lists the id as one of the customer's assets.
    page = engineer_client.get(f"/customers/{customer.slug}/").content.decode()
    assert "Cloudflare account id" in page and ACCOUNT in page


def test_a_zone_id_is_more_specific_than_the_account(make_feed, post):
    hoster = CustomerFactory(slug="hoster")
    tenant = CustomerFactory(slug="tenant")
    AssetFactory(customer=hoster, kind=Asset.Kind.CLOUDFLARE_ACCOUNT, value=ACCOUNT)
    AssetFactory(customer=tenant, kind=Asset.Kind.CLOUDFLARE_ZONE, value=ZONE_TAG)
    feed, token = make_feed("cloudflare")
    l7 = payloads.cloudflare_l7()
    l7["account_id"] = ACCOUNT
    l7["data"].update(zone_tag=ZONE_TAG, zone_name="unlisted.example", target_hostname="www.unlisted.example")
    post(feed, token, json.dumps(l7).encode())
    assert Alert.objects.get(feed=feed).customer == tenant


def test_a_cloudflare_id_asset_must_be_32_hex_characters(db):
    from django.core.exceptions import ValidationError

    asset = Asset(customer=CustomerFactory(), kind=Asset.Kind.CLOUDFLARE_ZONE, value="not-an-id")
    with pytest.raises(ValidationError, match="32 hexadecimal"):
        asset.clean()
    asset.value = ZONE_TAG.upper()
    asset.clean()
    assert asset.value == ZONE_TAG

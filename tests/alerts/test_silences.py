"""Silences as in Alertmanager: any label or field, =, !=, =~, !~; a silence of everything is refused."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts(post, make_feed, customer_a, customer_b):
    am, am_token = make_feed("alertmanager")
    suricata, s_token = make_feed("suricata")
    post(
        am,
        am_token,
        examples.body(
            examples.alertmanager_notification(
                examples.alertmanager_alert(alertname="EdgeSynFloodDetected", target_ip="203.0.113.10"),
                examples.alertmanager_alert(
                    alertname="EdgeUdpFlood",
                    target_ip="203.0.113.11",
                    vector="udp_flood",
                    fingerprint="b2",
                    instance="edge-ams2:9100",
                ),
            )
        ),
    )
    post(
        suricata,
        s_token,
        examples.eve_lines(
            examples.suricata_alert(src_ip="185.220.101.47", dest_ip="203.0.113.7"),
            examples.suricata_alert(src_ip="45.155.205.9", dest_ip="203.0.113.8", signature_id=2_100_002),
        ),
    )
    assert Alert.objects.count() == 4
    return Alert.objects.all()


def _matched(matchers):
    count, matched = services.silence_preview(matchers=matchers)
    return count, matched


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([{"field": "alertname", "op": "=", "value": "EdgeUdpFlood"}], 1),
        ([{"field": "alertname", "op": "=~", "value": "Edge.*"}], 2),
        ([{"field": "instance", "op": "=", "value": "edge-ams2:9100"}], 1),  # any label, by its bare name
        ([{"field": "label:instance", "op": "=~", "value": "edge-.*"}], 2),
        ([{"field": "source_ip", "op": "=", "value": "45.155.205.9"}], 1),
        ([{"field": "source_ip", "op": "=~", "value": "185\\.220\\..*"}], 1),
        ([{"field": "target_ip", "op": "=~", "value": "203\\.0\\.113\\.1[01]"}], 2),
        (
            [
                {"field": "customer", "op": "=", "value": "acme"},
                {"field": "feed", "op": "!=", "value": "suricata-feed"},
            ],
            2,
        ),
        (
            [{"field": "customer", "op": "=", "value": "acme"}, {"field": "source_ip", "op": "!~", "value": "45\\..*"}],
            3,
        ),
        ([{"field": "target", "op": "=", "value": "203.0.113.7"}], 1),
    ],
)
def test_matchers_on_any_field_or_label_with_the_four_operators(alerts, matchers, expected):
    count, _ = _matched(matchers)
    assert count == expected


@pytest.mark.parametrize(
    "matchers",
    [
        [{"field": "severity", "op": "=~", "value": ".*"}],
        [{"field": "severity", "op": "=~", "value": "critical|high|medium|low|info"}],
        [{"field": "title", "op": "=~", "value": ".+"}],
        [{"field": "vector", "op": "!=", "value": "nothing"}],
        [{"field": "instance", "op": "!~", "value": "x"}, {"field": "customer", "op": "=~", "value": ".*"}],
    ],
)
def test_a_silence_that_would_match_every_alert_is_refused_with_a_reason(alerts, engineer, matchers):
    with pytest.raises(ValueError, match="would silence every alert"):
        services.silence_create(
            matchers=matchers,
            starts_at=timezone.now(),
            ends_at=timezone.now() + timedelta(hours=1),
            comment="maintenance",
            user=engineer,
        )
    assert not Alert.objects.filter(status=Alert.Status.SUPPRESSED).exists()


def test_the_api_refuses_a_catch_all_silence_with_a_clear_error(api_as, engineer):
    response = api_as(engineer).post(
        "/api/silences/",
        {
            "matchers": [{"field": "severity", "op": "=~", "value": ".*"}],
            "ends_at": (timezone.now() + timedelta(hours=1)).isoformat(),
            "comment": "quiet night",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "severity=~.* would silence every alert" in response.json()["detail"]


def test_a_bad_field_name_is_refused(engineer):
    with pytest.raises(ValueError, match="unknown matcher field"):
        services.silence_validate([{"field": "no spaces please", "op": "=", "value": "x"}])


def test_silences_apply_at_ingest_on_labels_and_source_addresses(post, make_feed, engineer, customer_a):
    services.silence_create(
        matchers=[{"field": "source_ip", "op": "=", "value": "185.220.101.47"}],
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
        comment="known scanner, customer informed",
        user=engineer,
    )
    feed, token = make_feed("suricata")
    post(
        feed,
        token,
        examples.eve_lines(
            examples.suricata_alert(src_ip="185.220.101.47", dest_ip="203.0.113.7"),
            examples.suricata_alert(src_ip="45.155.205.9", dest_ip="203.0.113.8", signature_id=2_100_002),
        ),
    )
    by_source = {a.source_ips[0]: a.status for a in Alert.objects.all()}
    assert by_source == {"185.220.101.47": Alert.Status.SUPPRESSED, "45.155.205.9": Alert.Status.NEW}


def test_silence_list_shows_creator_comment_and_alerts_suppressed(alerts, engineer, engineer_client, api_as):
    silence = services.silence_create(
        matchers=[{"field": "alertname", "op": "=~", "value": "Edge.*"}],
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
        comment="edge maintenance window CHG-1234",
        user=engineer,
    )
    page = engineer_client.get(reverse("silence-list"))
    html = page.content.decode()
    assert "edge maintenance window CHG-1234" in html
    assert ">eli <" in html
    [row] = [r for r in page.context["active"] if r.pk == silence.pk]
    assert row.suppressed == 2
    listed = api_as(engineer).get("/api/silences/").json()["results"]
    assert listed[0]["suppressed"] == 2 and listed[0]["created_by"] == "eli"

"""Triage: the queue, bulk actions, silences, the API, imports."""

import gzip
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Delivery, Silence
from console.models import AuditEvent

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


@pytest.fixture
def queue_alerts(post, make_feed, customer_a, customer_b):
    feed, token = make_feed("cloudflare")
    post(feed, token, examples.body(examples.cloudflare_l4(target_ip="203.0.113.10", correlation_id="x1", pps=9e6)))
    post(feed, token, examples.body(examples.cloudflare_l4(target_ip="203.0.113.11", correlation_id="x2", pps=1e5)))
    post(
        feed,
        token,
        examples.body(examples.cloudflare_l7(zone="globex.example", hostname="globex.example", correlation_id="x3")),
    )
    return feed, token


def test_queue_is_sorted_by_urgency_and_shows_the_reasons(engineer_client, queue_alerts):
    response = engineer_client.get(reverse("alert-list"))
    assert response.status_code == 200
    alerts = list(response.context["alerts"])
    assert [a.urgency for a in alerts] == sorted((a.urgency for a in alerts), reverse=True)
    assert b"enterprise plan" in response.content


def test_queue_filters_are_shared_with_the_api(engineer_client, api_as, engineer, queue_alerts):
    page = engineer_client.get(reverse("alert-list"), {"customer": "globex"})
    assert {a.customer.slug for a in page.context["alerts"]} == {"globex"}
    api = api_as(engineer).get("/api/alerts/", {"customer": "globex", "layer": "L7"}).json()
    assert {a["customer"] for a in api["results"]} == {"globex"}
    assert all(a["layer"] == "L7" for a in api["results"])


def test_live_poll_returns_only_alerts_changed_since_the_cursor(engineer_client, post, queue_alerts):
    feed, token = queue_alerts
    cursor = timezone.now().isoformat()
    post(feed, token, examples.body(examples.cloudflare_l4(target_ip="203.0.113.12", correlation_id="late")))
    response = engineer_client.get(reverse("alert-list"), {"after": cursor}, HTTP_HX_REQUEST="true")
    rows = response.content.decode()
    assert rows.count('<tr id="alert-') == 1
    assert "203.0.113.12" in rows
    assert 'data-cursor="' in rows


def test_bulk_acknowledge_assigns_and_audits(engineer_client, engineer, queue_alerts):
    ids = list(Alert.objects.values_list("pk", flat=True)[:2])
    response = engineer_client.post(reverse("alert-bulk"), {"ids": ids, "action": "acknowledge"})
    assert response.status_code == 302
    acked = Alert.objects.filter(pk__in=ids)
    assert {a.status for a in acked} == {"acknowledged"}
    assert {a.assignee for a in acked} == {engineer}
    events = AuditEvent.objects.filter(action="alert.acknowledge")
    assert events.count() == 2
    assert events.first().before["status"] == "new" and events.first().after["status"] == "acknowledged"


@pytest.mark.parametrize("next_url", ["https://evil.example/phish", "//evil.example/", "/alerts/?status=new"])
def test_bulk_action_returns_only_to_pages_of_this_site(engineer_client, queue_alerts, next_url):
    ids = list(Alert.objects.values_list("pk", flat=True)[:1])
    response = engineer_client.post(reverse("alert-bulk"), {"ids": ids, "action": "acknowledge", "next": next_url})
    assert response.status_code == 302
    expected = next_url if next_url.startswith("/alerts/") else reverse("alert-list")
    assert response["Location"] == expected


def test_resolve_with_outcome_takes_alerts_out_of_the_queue(api_as, engineer, queue_alerts):
    alert = Alert.objects.first()
    result = api_as(engineer).post(
        "/api/alerts/bulk/", {"ids": [alert.pk], "action": "resolve", "outcome": "false_positive"}, format="json"
    )
    assert result.json() == {"action": "resolve", "selected": 1, "changed": 1}
    alert.refresh_from_db()
    assert (alert.status, alert.outcome) == ("resolved", "false_positive")
    assert alert not in Alert.objects.in_queue()


def test_viewer_cannot_triage(api_as, client, viewer, queue_alerts):
    alert = Alert.objects.first()
    assert (
        api_as(viewer)
        .post("/api/alerts/bulk/", {"ids": [alert.pk], "action": "acknowledge"}, format="json")
        .status_code
        == 403
    )
    client.force_login(viewer)
    client.post(reverse("alert-bulk"), {"ids": [alert.pk], "action": "acknowledge"})
    alert.refresh_from_db()
    assert alert.status == "new"


def test_silence_preview_create_suppress_and_expire(api_as, engineer, post, queue_alerts):
    feed, token = queue_alerts
    api = api_as(engineer)
    matchers = [
        {"field": "customer", "op": "=", "value": "acme"},
        {"field": "target", "op": "=~", "value": "203\\.0\\.113\\.1[01]"},
    ]
    preview = api.post("/api/silences/preview/", {"matchers": matchers}, format="json").json()
    assert preview["count"] == 2
    now = timezone.now()
    created = api.post(
        "/api/silences/",
        {
            "matchers": matchers,
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "comment": "known test traffic",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert Alert.objects.filter(status="suppressed").count() == 2
    # A new matching alert is stored and counted, but leaves the queue.
    post(feed, token, examples.body(examples.cloudflare_l4(target_ip="203.0.113.10", correlation_id="x9")))
    late = Alert.objects.filter(target_ip="203.0.113.10").order_by("-id").first()
    assert late.status == "suppressed"
    assert late not in Alert.objects.in_queue()
    # Expired silences stop applying: held alerts come back.
    api.post(f"/api/silences/{created.json()['id']}/expire/")
    assert Alert.objects.filter(status="suppressed").count() == 0


def test_silence_that_ends_by_itself_releases_its_alerts(engineer, queue_alerts):
    silence = services.silence_create(
        matchers=[{"field": "customer", "op": "=", "value": "globex"}],
        starts_at=timezone.now() - timedelta(minutes=10),
        ends_at=timezone.now() + timedelta(minutes=1),
        comment="maintenance",
        user=engineer,
    )
    assert Alert.objects.filter(status="suppressed").count() == 1
    Silence.objects.filter(pk=silence.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert services.silences_release_expired() == 1
    assert not Alert.objects.filter(status="suppressed").exists()


def test_silence_needs_a_comment_and_valid_regex(engineer):
    with pytest.raises(ValueError, match="comment"):
        services.silence_create(
            matchers=[{"field": "vector", "op": "=", "value": "x"}],
            starts_at=timezone.now(),
            ends_at=timezone.now() + timedelta(hours=1),
            comment=" ",
            user=engineer,
        )
    with pytest.raises(ValueError, match="regular expression"):
        services.silence_validate([{"field": "vector", "op": "=~", "value": "("}])


def test_silence_similar_prefills_what_the_selected_alerts_share(engineer_client, queue_alerts):
    ids = list(Alert.objects.filter(customer__slug="acme").values_list("pk", flat=True))
    response = engineer_client.get(reverse("silence-new"), {"alerts": ",".join(map(str, ids))})
    matchers = json.loads(response.context["form"].initial["matchers_json"])
    assert {"field": "customer", "op": "=", "value": "acme"} in matchers
    assert not any(m["field"] == "target" for m in matchers)  # the two targets differ


def test_attacker_written_text_is_escaped_on_every_alert_page(engineer_client, post, make_feed, customer_a):
    feed, token = make_feed("suricata", slug="hostile-suricata")
    line = examples.suricata_alert(signature=HOSTILE, dest_ip="203.0.113.5")
    line["http"] = {"http_user_agent": HOSTILE, "url": "/" + HOSTILE}
    post(feed, token, examples.eve_lines(line))
    alert = Alert.objects.get()
    for url in (
        reverse("alert-list"),
        alert.get_absolute_url(),
        alert.attack.get_absolute_url(),
        feed.get_absolute_url(),
        reverse("delivery-detail", args=[alert.delivery_id]),
    ):
        html = engineer_client.get(url).content.decode()
        assert "<script>window.__pwned" not in html, url
        assert 'onerror="window' not in html, url


def test_import_alerts_command_streams_a_gzipped_eve_file(make_feed, tmp_path, capsys):
    feed, _ = make_feed("suricata", slug="eve-import")
    path = tmp_path / "eve.json.gz"
    lines = [examples.suricata_alert(src_ip=f"192.0.2.{i % 250}", dest_ip="203.0.113.5") for i in range(5000)]
    with gzip.open(path, "wb") as out:
        out.write(examples.eve_lines(*lines))
        out.write(b"this line is not json\n")
    call_command("import_alerts", "--feed", "eve-import", str(path))
    output = capsys.readouterr().out
    assert "100.0%" in output
    assert Delivery.objects.filter(feed=feed, status="processed").count() == 3  # 2000-line chunks
    assert sum(Alert.objects.filter(feed=feed).values_list("count", flat=True)) == 5000
    # One SYN flood from 250 spoofed sources against one victim is one alert.
    assert Alert.objects.filter(feed=feed).count() == 1
    assert sum(d.skipped.get("malformed", 0) for d in Delivery.objects.filter(feed=feed)) == 1


def test_alert_list_api_uses_a_bounded_number_of_queries(api_as, engineer, queue_alerts, django_assert_max_num_queries):
    api = api_as(engineer)
    with django_assert_max_num_queries(6):
        assert api.get("/api/alerts/").status_code == 200


def test_customer_viewer_sees_no_alert_stream(api_as, client, customer_viewer, queue_alerts):
    api = api_as(customer_viewer)
    assert api.get("/api/alerts/").json()["results"] == []
    alert = Alert.objects.filter(customer__slug="acme").first()
    assert api.get(f"/api/alerts/{alert.pk}/").status_code == 404
    assert api.get("/api/deliveries/").json()["results"] == []
    client.force_login(customer_viewer)
    assert client.get(alert.get_absolute_url()).status_code == 404
    assert client.get(reverse("alert-list")).status_code == 404

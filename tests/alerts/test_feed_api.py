"""/api/feeds/: create (the token once), update, disable, rotate, import, preview, replay; the schema lists them."""

import gzip
import io

import pytest
from drf_spectacular.generators import SchemaGenerator

from alerts.formats import examples
from alerts.models import Alert, AlertImport, Attack, Delivery, Feed
from console.audit import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def senior_api(api_as, senior):
    return api_as(senior)


def _ingest(client, slug, token, payload):
    return client.post(
        f"/ingest/{slug}/",
        data=examples.body(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_create_answers_the_token_once_and_it_works(senior_api, client, django_capture_on_commit_callbacks):
    response = senior_api.post(
        "/api/feeds/",
        {"name": "Edge Alertmanager", "slug": "edge-am", "format": "alertmanager", "auto_resolve_minutes": 45},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    token = body["secret"]
    assert len(token) > 30 and body["secret_hint"] == token[-4:]
    assert body["auto_resolve_after_minutes"] == 45
    feed = Feed.objects.get(slug="edge-am")
    assert token not in (feed.secret_hash, feed.secret_hint)
    assert "secret" not in senior_api.get("/api/feeds/edge-am/").json()
    with django_capture_on_commit_callbacks(execute=True):
        answer = _ingest(client, "edge-am", token, examples.alertmanager_notification(examples.alertmanager_alert()))
    assert answer.status_code == 202
    assert AuditEvent.objects.filter(action="feed.create").exists()


def test_create_refuses_a_pull_feed_without_url_and_an_engineer(senior_api, api_as, engineer):
    bad = senior_api.post("/api/feeds/", {"name": "p", "slug": "p", "format": "generic", "mode": "pull"}, format="json")
    assert bad.status_code == 400 and "pull_url" in bad.json()
    refused = api_as(engineer).post("/api/feeds/", {"name": "x", "slug": "x", "format": "generic"}, format="json")
    assert refused.status_code == 403
    assert not Feed.objects.exists()


def test_update_changes_mapping_limits_and_auto_resolve_and_is_audited(senior_api, make_feed, customer_b):
    feed, _ = make_feed("generic")
    response = senior_api.patch(
        f"/api/feeds/{feed.slug}/",
        {
            "options": {"mapping": {"target_ip": "dst"}},
            "customer": "globex",
            "rate_limit_per_minute": 60,
            "auto_resolve_minutes": 10,
            "expected_interval_minutes": 30,
            "slug": "renamed",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    feed.refresh_from_db()
    assert feed.slug == "generic-feed"  # the webhook URL does not move
    assert feed.options == {"mapping": {"target_ip": "dst"}}
    assert feed.customer == customer_b
    assert (feed.rate_limit_per_minute, feed.auto_resolve_minutes, feed.expected_interval_minutes) == (60, 10, 30)
    event = AuditEvent.objects.get(action="feed.update")
    assert event.before["rate_limit_per_minute"] == 6000 and event.after["rate_limit_per_minute"] == 60


def test_disable_makes_the_webhook_404(senior_api, make_feed, client):
    feed, token = make_feed("alertmanager")
    assert senior_api.post(f"/api/feeds/{feed.slug}/disable/").json()["enabled"] is False
    payload = examples.alertmanager_notification(examples.alertmanager_alert())
    assert _ingest(client, feed.slug, token, payload).status_code == 404
    assert senior_api.post(f"/api/feeds/{feed.slug}/enable/").json()["enabled"] is True


def test_rotate_gives_a_new_token_and_the_old_one_stops_working(senior_api, make_feed, client):
    feed, old = make_feed("alertmanager")
    response = senior_api.post(f"/api/feeds/{feed.slug}/rotate-secret/")
    assert response.status_code == 200
    new = response.json()["secret"]
    payload = examples.alertmanager_notification(examples.alertmanager_alert())
    assert _ingest(client, feed.slug, old, payload).status_code == 401
    assert _ingest(client, feed.slug, new, payload).status_code == 202


def test_import_a_gzipped_eve_file(
    api_as, engineer, make_feed, customer_a, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    feed, _ = make_feed("suricata")
    lines = examples.eve_lines(
        *[examples.suricata_alert(src_ip=f"185.220.101.{i}", dest_ip="203.0.113.7") for i in range(1, 6)]
    )
    upload = io.BytesIO(gzip.compress(lines))
    upload.name = "eve.json.gz"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(engineer).post(f"/api/feeds/{feed.slug}/import/", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    job = AlertImport.objects.get(pk=response.json()["id"])
    assert job.status == AlertImport.Status.DONE
    # Five flooding sources against one victim: one flood alert that lists every source.
    (alert,) = Alert.objects.filter(feed=feed)
    assert sorted(alert.source_ips) == [f"185.220.101.{i}" for i in range(1, 6)]


def test_preview_parses_the_last_deliveries_with_unsaved_settings(
    senior_api, make_feed, customer_a, client, django_capture_on_commit_callbacks
):
    feed, token = make_feed("generic")
    record = {"title": "Flood", "struck": "203.0.113.50", "kind": "udp_flood"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/ingest/{feed.slug}/",
            data=examples.body(record),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    stored = Alert.objects.get()
    assert stored.customer is None  # neither the generic mapping nor the label defaults know "struck"
    mapping = {"mapping": {"target_ip": "struck", "vector": "kind"}}
    response = senior_api.post(f"/api/feeds/{feed.slug}/preview/", {"options": mapping}, format="json")
    assert response.status_code == 200, response.content
    [row] = response.json()["deliveries"]
    assert row["error"] == ""
    assert row["alerts"][0]["target"] == "203.0.113.50"
    assert row["alerts"][0]["customer"] == "acme"
    assert row["alerts"][0]["vector"] == "udp_flood"
    feed.refresh_from_db()
    assert feed.options == {}  # nothing saved
    assert Alert.objects.get().customer is None  # nothing written


def test_replay_rebuilds_unmapped_alerts_and_rejected_deliveries_after_a_fix(
    senior_api, make_feed, customer_a, client, django_capture_on_commit_callbacks
):
    feed, token = make_feed("generic")
    with django_capture_on_commit_callbacks(execute=True):
        for ip in ("203.0.113.50", "203.0.113.51"):
            client.post(
                f"/ingest/{feed.slug}/",
                data=examples.body({"title": f"Flood on {ip}", "struck": ip}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
    assert Alert.objects.filter(customer__isnull=True).count() == 2
    senior_api.patch(f"/api/feeds/{feed.slug}/", {"options": {"mapping": {"target_ip": "struck"}}}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = senior_api.post(f"/api/feeds/{feed.slug}/replay/", {}, format="json")
    assert response.status_code == 202
    assert response.json()["unmapped"] == 2 and response.json()["alerts_removed"] == 2
    assert sorted(Alert.objects.values_list("customer__slug", "target_ip")) == [
        ("acme", "203.0.113.50"),
        ("acme", "203.0.113.51"),
    ]
    assert not Attack.objects.filter(customer__isnull=True).exists()
    assert Delivery.objects.filter(status="processed").count() == 2


def test_schema_lists_the_feed_lifecycle():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert {"get", "post"} <= set(paths["/api/feeds/"])
    assert {"get", "put", "patch"} <= set(paths["/api/feeds/{slug}/"])
    for name in ("disable", "enable", "rotate-secret", "import", "replay", "preview"):
        assert "post" in paths[f"/api/feeds/{{slug}}/{name}/"], name
    created = paths["/api/feeds/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/FeedCreated")
    assert "multipart/form-data" in paths["/api/feeds/{slug}/import/"]["post"]["requestBody"]["content"]


def test_feed_edit_page_never_shows_the_signing_key_and_keeps_it_when_left_empty(client, senior, make_feed):
    feed, _ = make_feed("alertmanager", signing_key="s3cret-signing-key")
    client.force_login(senior)
    page = client.get(f"/feeds/{feed.slug}/edit/")
    assert page.status_code == 200
    assert b"s3cret-signing-key" not in page.content
    form = page.context["form"]
    data = {name: form[name].value() if form[name].value() is not None else "" for name in form.fields}
    data.update({"signing_key": "", "rate_limit_per_minute": 120, "options": "{}", "enabled": "on"})
    data = {k: v for k, v in data.items() if v is not False}
    saved = client.post(f"/feeds/{feed.slug}/edit/", data)
    assert saved.status_code == 302, saved.context["form"].errors if saved.context else saved
    feed.refresh_from_db()
    assert feed.signing_key == "s3cret-signing-key"
    assert feed.rate_limit_per_minute == 120

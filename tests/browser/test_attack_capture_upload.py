"""Upload an attack capture on the attack page with no baseline: automatic baseline, countries and ASNs (issue 14)."""

from __future__ import annotations

import random
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import Attack
from tests.browser.support import PageProblems, login
from tests.traffic import gen
from tests.traffic import vectors as V
from traffic.models import TrafficSample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_attack_capture_uploaded_on_the_attack_page_is_compared_with_the_automatic_baseline(
    page, page_problems: PageProblems, live_server, engineer, customer_a, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    rng = random.Random(1)
    path = tmp_path / "syn-flood.pcap"
    gen.write_pcap(path, V.merge(V.normal(rng, 6), V.syn_flood_with_answers(rng, pool=100)))
    now = timezone.now()
    attack = Attack.objects.create(customer=customer_a, target=V.VICTIM, started_at=now, last_seen=now)
    assert not TrafficSample.objects.filter(label="baseline").exists()

    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/attacks/{attack.pk}/")
    upload = page.locator("#attack-upload")
    expect(upload).to_be_visible(timeout=20000)
    upload.locator("input[type=file]").set_input_files(str(path))
    with page.expect_navigation():
        upload.get_by_role("button", name="Upload").click()
    assert page.url.rstrip("/").endswith(f"/attacks/{attack.pk}")

    card = page.locator("#attack-suggestions")
    suggestion = card.locator(".suggestion").first
    expect(suggestion).to_be_visible(timeout=30000)
    assert suggestion.locator("code").inner_text().startswith("ip.dst in {203.0.113.0/24} and tcp.flags eq 2")
    expect(card).to_contain_text("this capture before the attack")
    countries = card.locator(".attack-sources td:nth-child(2)").all_inner_texts()
    assert any(re.fullmatch(r"[A-Z]{2}", c) for c in countries), countries
    asns = card.locator(".attack-sources td:nth-child(3)").all_inner_texts()
    assert any(a not in ("", "unknown") for a in asns), asns
    expect(card.locator(".attack-geo")).to_contain_text(re.compile(r"Source countries: [A-Z]{2} [\d,]+"))

    # The attack page's own source countries and ASNs (the report's figures) count the capture too.
    page.reload()
    places = page.locator("#attack-places")
    expect(places.locator("#attack-countries")).to_be_visible(timeout=20000)
    placed = places.locator("#attack-countries td:nth-child(1)").all_inner_texts()
    assert any(re.fullmatch(r"[A-Z]{2}", c) for c in placed), placed
    assert any(a.strip() for a in places.locator("#attack-asns td:nth-child(1)").all_inner_texts())
    expect(places).to_contain_text("placed by our offline geolocation")

    card = page.locator("#attack-suggestions")
    expect(card.locator(".suggestion").first).to_be_visible(timeout=30000)
    with page.expect_navigation():
        card.get_by_role("link", name="full comparison").click()
    expect(page.locator("#auto-baseline")).to_contain_text("this capture before the attack")
    expect(page.locator("code.signature").first).to_contain_text("tcp.flags eq 2")
    sources = page.locator("#compare-sources td:nth-child(2)").all_inner_texts()
    assert any(re.fullmatch(r"[A-Z]{2}", c) for c in sources), sources
    page_problems.assert_clean("attack page upload and automatic comparison")

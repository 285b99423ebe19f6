"""The attack page suggests signatures from its traffic samples, ready to propose as a mitigation."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import Attack
from tests.browser.support import PageProblems, login
from tests.shared import shared_file
from tests.traffic import gen
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sample(customer, attack, path, label):
    sample = TrafficSample.objects.create(customer=customer, attack=attack, name=path.name, kind="logpush", label=label)
    with path.open("rb") as fh:
        sample.original.save(path.name, fh)
    return sample_parse(sample_id=sample.pk)


def test_attack_page_suggests_a_signature_and_links_to_propose_it(
    page, page_problems: PageProblems, live_server, engineer, customer_a, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    lines = gen.apache_lines(shared_file("httplogs/apache/elastic_examples_apache_logs.gz"))
    gen.write_jsonl(tmp_path / "attack.jsonl", gen.attack_records(lines, n=800))
    gen.write_jsonl(tmp_path / "baseline.jsonl", gen.baseline_records(lines))
    now = timezone.now()
    attack = Attack.objects.create(customer=customer_a, target="acme.example", started_at=now, last_seen=now)
    _sample(customer_a, attack, tmp_path / "attack.jsonl", "attack")
    _sample(customer_a, None, tmp_path / "baseline.jsonl", "baseline")

    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/attacks/{attack.pk}/")
    suggestion = page.locator("#attack-suggestions .suggestion").first
    expect(suggestion).to_be_visible(timeout=20000)
    text = suggestion.locator("code").inner_text()
    assert any(
        field in text
        for field in ("cf.bot_management.ja3_hash", "http.request.uri.path", "http.request.headers", "http.cookie")
    )
    with page.expect_navigation():
        suggestion.get_by_role("link", name="Propose mitigation").click()
    assert "/mitigations/new/" in page.url and "expression=" in page.url
    page_problems.assert_clean("attack page and propose form")

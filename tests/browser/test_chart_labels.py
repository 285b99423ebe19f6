"""A hostile user agent in a chart label is drawn as text: no link, no style, in plotly's SVG.

Plotly renders a subset of HTML in labels (``<a href>``, ``<b>``, ``style``); the labels come
from attackers (user agents, paths, hosts), so they reach plotly escaped (console/chart_text.py).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import PageProblems, login
from tests.shared import shared_file
from tests.traffic import gen
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = '<a href="https://evil.example/login">support</a>'
SCRIPT_LINK = '<a href="javascript:alert(1)">x</a><b style="font-size:60px;color:red">big</b>'


def test_a_hostile_user_agent_in_a_chart_label_renders_as_text(
    page, page_problems: PageProblems, live_server, engineer, customer_a, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # The real Apache log as Logpush records; the attacker's requests carry hand-written user agents.
    records = gen.baseline_records(gen.apache_lines(shared_file("httplogs/apache/elastic_examples_apache_logs.gz")))
    for i, record in enumerate(records[:3000]):
        record["ClientRequestUserAgent"] = LINK if i % 2 else SCRIPT_LINK
    path = tmp_path / "hostile.jsonl"
    gen.write_jsonl(path, records)
    sample = TrafficSample.objects.create(customer=customer_a, name=path.name, kind="logpush", label="attack")
    with path.open("rb") as fh:
        sample.original.save(path.name, fh)
    sample = sample_parse(sample_id=sample.pk)
    assert sample.status == "ready", sample.errors

    login(page, live_server, engineer)
    page.goto(f"{live_server.url}{sample.get_absolute_url()}")
    chart = page.locator('[data-chart="chart-top_user_agents"]')
    ticks = chart.locator("svg .ytick text")
    expect(ticks.first).to_be_visible(timeout=20000)
    labels = ticks.all_text_contents()
    assert LINK in labels and SCRIPT_LINK in labels, labels  # the literal text, as the attacker sent it
    assert chart.locator("svg a").count() == 0  # no link of any kind inside the plot
    assert chart.locator('svg [href*="evil.example"], svg [href^="javascript"]').count() == 0
    assert chart.locator("svg [style*='font-size:60px'], svg [style*='font-size: 60px']").count() == 0
    page_problems.assert_clean("traffic sample with hostile user agents")

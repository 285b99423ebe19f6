"""Every string a chart draws reaches plotly HTML-escaped, once: plotly renders a subset of HTML in labels."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from alerts import charts as alert_charts
from console.chart_text import figure
from reports import charts
from traffic import charts as traffic_charts

HOSTILE = '<a href="javascript:alert(1)">x</a><b style="font-size:90px">big</b> & co'
ESCAPED = '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;&lt;b style="font-size:90px"&gt;big&lt;/b&gt; &amp; co'


def _figures() -> dict[str, dict]:
    """Each chart builder fed the hostile string wherever attacker data goes in."""
    when = dt.datetime(2026, 3, 3, 2, 14, tzinfo=dt.UTC)
    alert = SimpleNamespace(
        event_time=when, bps=10**9, pps=None, rps=None, vector=HOSTILE, feed=SimpleNamespace(slug="fastnetmon")
    )
    alert.get_absolute_url = lambda: "/alerts/1/?a=1&b=2"
    log_summary = {
        "requests_per_second": [{"t": 1772504040, "requests": 5}],
        "top_user_agents": [{"value": HOSTILE, "requests": 9}],
        "top_paths": [{"value": "/" + HOSTILE, "requests": 3}],
        "top_ips": [{"value": HOSTILE, "requests": 2}],
    }
    pcap_summary = {
        "per_second": [],
        "protocols": {HOSTILE: 4},
        "top_sources": [{"ip": HOSTILE, "packets": 1}],
        "packet_sizes": {HOSTILE: 1},
        "ttl": {HOSTILE: 1},
        "tcp_flags": {HOSTILE: 1},
    }
    comparison = {"attributes": [{"attribute": "http.user_agent", "values": [{"value": HOSTILE, "attack_share": 1}]}]}
    return {
        "bars": charts.bars([HOSTILE], [3], title="Top ASNs", links=["/attacks/?asn=1&x=2"], horizontal=True),
        "pie": charts.vector_pie([{"title": HOSTILE, "alerts": 2}]),
        "ongoing": charts.ongoing_attacks(
            [{"target": HOSTILE, "customer": "acme", "peak_bps": 5, "url": "/attacks/1/", "severity": "high"}]
        ),
        "timeline": charts.traffic_timeline(
            {f"capture {HOSTILE}": {"x": ["2026-03-03 02:14"], "y": [1], "metric": "bps"}},
            [{"x": "2026-03-03 02:15", "label": HOSTILE}],
            zone="UTC",
        ),
        "alerts": alert_charts.attack_timeline([alert]),
        # The rate charts draw only numbers and our own names.
        **{f"log {k}": v for k, v in traffic_charts.log_charts(log_summary).items() if k != "rate"},
        **{f"pcap {k}": v for k, v in traffic_charts.pcap_charts(pcap_summary).items() if k != "rate"},
        "comparison": traffic_charts.comparison_chart(comparison),
    }


@pytest.mark.parametrize("name", list(_figures()))
def test_every_chart_builder_escapes_what_it_draws_once(name):
    text = json.dumps(_figures()[name])
    assert "<a" not in text and "<b" not in text, text
    assert "&amp;lt;" not in text  # escaped once, not twice
    assert "&lt;a href=" in text


def test_the_drawn_keys_are_escaped_and_links_and_templates_are_not():
    fig = figure(
        [
            {
                "type": "bar",
                "name": HOSTILE,
                "y": [HOSTILE, "2026-03-03"],
                "x": [1, 2],
                "text": [HOSTILE],
                "customdata": ["/traffic/?ua=a&b=<c>"],
                "hovertemplate": "%{y}<extra>%{fullData.name}</extra>",
            }
        ],
        {"title": {"text": HOSTILE}, "annotations": [{"text": HOSTILE, "x": "2026-03-03"}], "height": 300},
    )
    trace = fig["data"][0]
    assert trace["name"] == trace["text"][0] == trace["y"][0] == ESCAPED
    assert trace["y"][1] == "2026-03-03" and trace["x"] == [1, 2]
    assert trace["customdata"] == ["/traffic/?ua=a&b=<c>"]  # a URL a click opens, never drawn
    assert trace["hovertemplate"] == "%{y}<extra>%{fullData.name}</extra>"  # our markup reads escaped values
    assert fig["layout"]["title"]["text"] == fig["layout"]["annotations"][0]["text"] == ESCAPED
    assert fig["layout"]["height"] == 300


def test_a_series_name_reaches_the_hover_only_through_the_escaped_trace_name():
    fig = charts.traffic_timeline({HOSTILE: {"x": ["2026-03-03 02:14"], "y": [1], "metric": "bps"}}, [], zone="UTC")
    assert HOSTILE not in fig["data"][0]["hovertemplate"]
    assert "%{fullData.name}" in fig["data"][0]["hovertemplate"]

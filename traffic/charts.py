"""Traffic charts as pure functions: a sample's summary in, plotly figures (dicts) out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from console.chart_text import figure


def _time(t: float | int | str) -> str:
    if isinstance(t, int | float):
        return dt.datetime.fromtimestamp(t, tz=dt.UTC).isoformat()
    return str(t)


def _bar(title: str, labels: list[str], values: list[float], *, horizontal: bool = False) -> dict[str, Any]:
    trace = (
        {"type": "bar", "x": values, "y": labels, "orientation": "h"}
        if horizontal
        else {
            "type": "bar",
            "x": labels,
            "y": values,
        }
    )
    layout: dict[str, Any] = {"title": {"text": title}, "height": 300}
    if horizontal:
        layout["yaxis"] = {"automargin": True, "autorange": "reversed", "type": "category"}
    else:
        layout["xaxis"] = {"type": "category"}
    return figure([trace], layout)


def pcap_charts(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    per_second = summary.get("per_second") or []
    charts = {
        "rate": figure(
            [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "packets/s",
                    "x": [_time(p["t"]) for p in per_second],
                    "y": [p["packets"] for p in per_second],
                },
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "bits/s",
                    "x": [_time(p["t"]) for p in per_second],
                    "y": [p["bits"] for p in per_second],
                    "yaxis": "y2",
                },
            ],
            {
                "title": {"text": "Packets and bits per second"},
                "height": 300,
                "xaxis": {"type": "date"},
                "yaxis2": {"overlaying": "y", "side": "right"},
                "legend": {"orientation": "h"},
            },
        ),
        "protocols": _bar(
            "Protocol mix (packets)", list(summary.get("protocols", {})), list(summary.get("protocols", {}).values())
        ),
        "sources": _bar(
            "Top sources (packets)",
            [s["ip"] for s in summary.get("top_sources", [])],
            [s["packets"] for s in summary.get("top_sources", [])],
            horizontal=True,
        ),
        "sizes": _bar(
            "Packet sizes", list(summary.get("packet_sizes", {})), list(summary.get("packet_sizes", {}).values())
        ),
        "ttl": _bar("TTL / hop limit", list(summary.get("ttl", {})), list(summary.get("ttl", {}).values())),
        "flags": _bar("TCP flags", list(summary.get("tcp_flags", {})), list(summary.get("tcp_flags", {}).values())),
    }
    io = (summary.get("statistics") or {}).get("io") or {}
    if io.get("start") is not None:
        charts = {"io": io_graph(io), **charts}
    return charts


def io_graph(io: dict[str, Any]) -> dict[str, Any]:
    """Wireshark's I/O graph: packets and bits per 1 s interval, empty intervals drawn as 0."""
    step = int(io.get("interval_s") or 1)
    x = [_time(io["start"] + i * step) for i in range(len(io.get("packets", [])))]
    return figure(
        [
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv"},
                "name": "packets/s",
                "x": x,
                "y": io["packets"],
            },
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv"},
                "name": "bits/s",
                "x": x,
                "y": [b * 8 for b in io.get("bytes", [])],
                "yaxis": "y2",
            },
        ],
        {
            "title": {"text": f"I/O graph ({step} s intervals)"},
            "height": 300,
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": "packets/s"}, "rangemode": "tozero"},
            "yaxis2": {"overlaying": "y", "side": "right", "title": {"text": "bits/s"}, "rangemode": "tozero"},
            "legend": {"orientation": "h"},
        },
    )


def log_charts(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    per_second = summary.get("requests_per_second") or summary.get("per_second") or []
    charts: dict[str, dict[str, Any]] = {
        "rate": figure(
            [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "requests/s",
                    "x": [_time(p.get("t")) for p in per_second],
                    "y": [p.get("requests", p.get("count", 0)) for p in per_second],
                }
            ],
            {"title": {"text": "Requests per second"}, "height": 300, "xaxis": {"type": "date"}},
        )
    }
    for key, title in (
        ("top_ips", "Top client IPs"),
        ("top_paths", "Top paths"),
        ("top_user_agents", "Top user agents"),
    ):
        rows = summary.get(key) or []
        if rows:
            charts[key] = _bar(
                title,
                [str(r.get("value"))[:80] for r in rows],
                [r.get("requests", r.get("count", 0)) for r in rows],
                horizontal=True,
            )
    return charts


def comparison_chart(comparison: dict[str, Any], top: int = 12) -> dict[str, Any]:
    """Attack share against baseline share of the most separating attribute values."""
    rows = []
    for attribute in comparison.get("attributes", [])[:top]:
        values = attribute.get("values") or []
        if values:
            best = values[0]
            rows.append(
                (
                    f"{attribute['attribute']} = {str(best.get('value'))[:40]}",
                    best.get("attack_share", 0),
                    best.get("baseline_share", 0),
                )
            )
    labels = [r[0] for r in rows]
    return figure(
        [
            {"type": "bar", "orientation": "h", "name": "attack", "y": labels, "x": [r[1] for r in rows]},
            {"type": "bar", "orientation": "h", "name": "baseline", "y": labels, "x": [r[2] for r in rows]},
        ],
        {
            "title": {"text": "Share of records: attack vs baseline"},
            "barmode": "group",
            "height": 420,
            "yaxis": {"automargin": True, "autorange": "reversed", "type": "category"},
            "xaxis": {"tickformat": ".0%"},
            "legend": {"orientation": "h"},
        },
    )

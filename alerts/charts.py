"""Charts of the alerts app, as pure functions: data in, plotly figure (a dict) out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.models import Alert
from console.chart_text import figure

METRICS = (("bps", "bits/s"), ("pps", "packets/s"), ("rps", "requests/s"))


def attack_timeline(alerts: Sequence[Alert]) -> dict[str, Any]:
    """One trace per metric: each alert's volume at the time it was seen, by vector."""
    traces = []
    for metric, label in METRICS:
        points = [(a.event_time, getattr(a, metric), a) for a in alerts if getattr(a, metric)]
        if not points:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": [p[0].isoformat() for p in points],
                "y": [p[1] for p in points],
                "text": [f"{p[2].vector} · {p[2].feed.slug}" for p in points],
                "customdata": [p[2].get_absolute_url() for p in points],
                "yaxis": "y" if metric == "bps" else ("y2" if metric == "pps" else "y3"),
            }
        )
    layout = {
        "title": {"text": "Alert volumes over time"},
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": "bits/s"}},
        "yaxis2": {"title": {"text": "packets/s"}, "overlaying": "y", "side": "right"},
        "yaxis3": {"overlaying": "y", "side": "right", "visible": False},
        "legend": {"orientation": "h"},
        "height": 320,
    }
    return figure(traces, layout)

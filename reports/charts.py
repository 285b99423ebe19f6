"""Charts of the dashboards and reports, as pure functions: plain data in, plotly figure (a dict) out.

Each point that stands for something an engineer can open carries its URL in
``customdata``; console.js navigates there on click.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from console.chart_text import figure

SEVERITY_COLORS = {
    "critical": "#e5484d",
    "high": "#f76b15",
    "medium": "#ffc53d",
    "low": "#46a758",
    "info": "#8d8d8d",
}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
LAYER_COLORS = {"L3": "#0090ff", "L4": "#8e4ec6", "L7": "#12a594"}
LAYER_ORDER = ("L3", "L4", "L7")
METRIC_LABELS = {"bps": "bits/s", "pps": "packets/s", "rps": "requests/s"}
PALETTE = ["#0090ff", "#e5484d", "#46a758", "#f76b15", "#8e4ec6", "#12a594", "#ffc53d", "#d6409f", "#8d8d8d"]


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    return figure(data, {"legend": {"orientation": "h"}, **layout})


def count_axis(title: str, values: Sequence[float | None] = ()) -> dict[str, Any]:
    """An axis of counts (alerts, attacks, tickets): whole numbers only, never a tick at 0.5."""
    axis: dict[str, Any] = {"title": {"text": title}, "rangemode": "tozero", "tickformat": ",d"}
    if max((v or 0 for v in values), default=0) <= 10:
        axis.update(tick0=0, dtick=1)
    return axis


def stacked_rate(
    buckets: Sequence[str],
    counts: dict[str, dict[str, int]],
    *,
    order: Sequence[str],
    colors: dict[str, str],
    title: str,
    link: Callable[[str, str], str],
) -> dict[str, Any]:
    """Alerts per hour, one stacked bar trace per key (severity or layer); a bar opens the filtered list.

    ``counts`` is {key: {bucket: n}}; ``link(key, bucket)`` the URL of that bar.
    """
    data = []
    for key in order:
        per = counts.get(key) or {}
        if not any(per.values()):
            continue
        data.append(
            {
                "type": "bar",
                "name": key,
                "x": list(buckets),
                "y": [per.get(b, 0) for b in buckets],
                "marker": {"color": colors.get(key)},
                "customdata": [link(key, b) for b in buckets],
                "hovertemplate": "%{fullData.name}: %{y} alerts<extra>%{x}</extra>",
            }
        )
    return _figure(
        data,
        {
            "title": {"text": title},
            "barmode": "stack",
            "xaxis": {"type": "date"},
            "yaxis": count_axis("alerts", [sum((counts.get(k) or {}).get(b, 0) for k in counts) for b in buckets]),
            "height": 280,
        },
    )


def ongoing_attacks(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Ongoing attacks by size (bits/s, else packets/s, else requests/s); a bar opens the attack."""
    rows = list(rows)
    labels = [f"{r['target']} · {r['customer'] or 'unassigned'}" for r in rows]
    metric = next((m for m in ("bps", "pps", "rps") if any(r.get(f"peak_{m}") for r in rows)), "bps")
    return _figure(
        [
            {
                "type": "bar",
                "orientation": "h",
                "name": f"peak {METRIC_LABELS[metric]}",
                "x": [r.get(f"peak_{metric}") or 0 for r in rows],
                "y": labels,
                "customdata": [r["url"] for r in rows],
                "marker": {"color": [SEVERITY_COLORS.get(r.get("severity"), "#0090ff") for r in rows]},
                "hovertemplate": "%{y}: %{x:.3s}" + METRIC_LABELS[metric] + "<extra></extra>",
            }
        ],
        {
            "title": {"text": f"Ongoing attacks (peak {METRIC_LABELS[metric]})"},
            "yaxis": {"autorange": "reversed", "automargin": True},
            "xaxis": {"title": {"text": METRIC_LABELS[metric]}, "exponentformat": "SI"},
            "height": max(200, 40 + 28 * len(rows)),
            "showlegend": False,
        },
    )


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    links: Sequence[str] | None = None,
    axis: str = "",
    horizontal: bool = False,
    color: str | Sequence[str] = "#0090ff",
    height: int = 260,
    counts: bool = True,
) -> dict[str, Any]:
    """One bar trace; ``links`` make each bar open a filtered list. ``counts``: whole-number axis;
    otherwise a rate axis with SI prefixes."""
    trace: dict[str, Any] = {"type": "bar", "name": axis or title, "marker": {"color": color}}
    if horizontal:
        trace.update(orientation="h", x=list(values), y=list(labels))
    else:
        trace.update(x=list(labels), y=list(values))
    if links is not None:
        trace["customdata"] = list(links)
    layout: dict[str, Any] = {"title": {"text": title}, "height": height, "showlegend": False}
    if horizontal:
        layout["yaxis"] = {"autorange": "reversed", "automargin": True, "type": "category"}
    value_axis = count_axis(axis, values) if counts else {"title": {"text": axis}, "exponentformat": "SI"}
    if horizontal:
        layout["xaxis"] = value_axis
    else:
        layout["xaxis"] = {"type": "category"}
        layout["yaxis"] = value_axis
    return _figure([trace], layout)


def attacks_over_time(
    days: Sequence[str],
    attacks: Sequence[int],
    peak_bps: Sequence[float | None],
    *,
    link: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """A customer's attacks per day (bars) and the day's largest peak (line, right axis); a bar
    opens that day's attacks when ``link`` is given (a customer viewer has no attack list)."""
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "attacks",
            "x": list(days),
            "y": list(attacks),
            "customdata": [link(d) for d in days] if link else None,
            "marker": {"color": "#0090ff"},
        }
    ]
    if any(peak_bps):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "largest peak (bits/s)",
                "x": list(days),
                "y": list(peak_bps),
                "yaxis": "y2",
                "customdata": [link(d) for d in days] if link else None,
                "line": {"color": "#e5484d"},
            }
        )
    return _figure(
        data,
        {
            "title": {"text": "Attacks per day"},
            "xaxis": {"type": "date"},
            "yaxis": count_axis("attacks", attacks),
            "yaxis2": {"title": {"text": "bits/s"}, "overlaying": "y", "side": "right", "exponentformat": "SI"},
            "height": 280,
        },
    )


def vector_pie(
    vectors: Sequence[dict[str, Any]], *, title: str = "Vectors", links: Sequence[str] | None = None
) -> dict[str, Any]:
    """Share of each vector; ``vectors`` rows hold ``title`` and ``alerts``."""
    trace: dict[str, Any] = {
        "type": "pie",
        "hole": 0.45,
        "labels": [v["title"] for v in vectors],
        "values": [v["alerts"] for v in vectors],
        "sort": False,
        "textinfo": "label+percent",
        "marker": {"colors": PALETTE[: len(vectors)] or None},
    }
    if links is not None:
        trace["customdata"] = list(links)
    return _figure([trace], {"title": {"text": title}, "height": 300, "showlegend": False})


def traffic_timeline(
    series: dict[str, dict[str, list[Any]]],
    markers: Sequence[dict[str, Any]],
    *,
    zone: str,
    title: str = "Attack traffic",
    x_range: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The attack's traffic over time (local time of ``zone``), one axis per metric, mitigations marked.

    ``series`` is {name: {"x": [...], "y": [...], "metric": "bps"|"pps"|"rps"}}; ``markers``
    are {"x": local time, "label": text} drawn as dotted vertical lines.
    """
    present = [m for m in ("bps", "pps", "rps") if any(s["x"] for s in series.values() if s["metric"] == m)]
    # The first metric present gets the main axis, the second the right one, a third an unlabelled overlay.
    axes = {metric: "y" if n == 0 else f"y{n + 1}" for n, metric in enumerate(present)}
    data = []
    for i, (name, s) in enumerate(series.items()):
        if not s["x"]:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": s.get("mode", "lines+markers"),
                "name": name,
                "x": list(s["x"]),
                "y": list(s["y"]),
                "yaxis": axes[s["metric"]],
                "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
                "connectgaps": False,
                # The name through %{fullData.name}: the escaped one (a series can be named after a capture).
                "hovertemplate": f"%{{y:.3s}} {METRIC_LABELS[s['metric']]}<extra>%{{fullData.name}}</extra>",
            }
        )
    layout: dict[str, Any] = {
        "title": {"text": title},
        "xaxis": {"type": "date", "title": {"text": f"time ({zone})"}},
        "height": 340,
        "shapes": [],
        "annotations": [],
    }
    for n, metric in enumerate(present):
        # SI prefixes (40G bits/s), never plotly's default "B" for billions.
        spec: dict[str, Any] = {
            "title": {"text": METRIC_LABELS[metric]},
            "rangemode": "tozero",
            "exponentformat": "SI",
        }
        if n:
            spec.update(overlaying="y", side="right", visible=n == 1)
        layout["yaxis" if n == 0 else f"yaxis{n + 1}"] = spec
    if x_range:
        layout["xaxis"]["range"] = list(x_range)
    for marker in markers:
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": marker["x"],
                "x1": marker["x"],
                "y0": 0,
                "y1": 1,
                "line": {"color": "#46a758", "width": 2, "dash": "dot"},
            }
        )
        layout["annotations"].append(
            {
                "x": marker["x"],
                "xref": "x",
                "yref": "paper",
                "y": 1,
                "yanchor": "bottom",
                "text": marker["label"],
                "showarrow": False,
                "font": {"color": "#46a758", "size": 11},
            }
        )
    return _figure(data, layout)

"""The one place text is made safe for plotly: every chart builder returns ``figure(data, layout)``.

Plotly renders a subset of HTML in every label it draws (axis ticks, trace names, legend,
hover text, annotations, titles): ``<a href>`` becomes a link, ``<b style>`` styled text.
Chart labels are user agents, hostnames, paths, ASN names and signatures written by
attackers, so each string that plotly shows is HTML-escaped here, once; plotly turns
``&lt;`` back into a literal ``<`` when it draws, so the label reads as it was sent.

Not escaped: ``customdata`` (the URL a click opens, never drawn) and the templates
(``hovertemplate``, ``texttemplate``), which are our own markup; they show attacker data
only through ``%{x}``, ``%{text}``, ``%{fullData.name}``..., which read the escaped values.
"""

from __future__ import annotations

import html
from typing import Any

# Keys whose strings plotly draws as text, wherever they stand in a figure (a trace's ``name``,
# ``x``/``y`` categories, a pie's ``labels``; a layout's ``title.text``, ``annotations[].text``,
# ``ticktext``).
TEXT_KEYS = frozenset({"name", "text", "hovertext", "labels", "x", "y", "z", "ticktext", "parents", "title"})


def chart_text(value: str) -> str:
    """One attacker-written string as plotly must receive it: ``<``, ``>`` and ``&`` as entities."""
    return html.escape(value, quote=False)


def figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    """A plotly figure (a dict for ``json_script``) with every drawn string escaped."""
    return {"data": [_escaped(trace) for trace in data], "layout": _escaped(layout)}


def _escaped(node: Any, drawn: bool = False) -> Any:
    if isinstance(node, dict):
        return {key: value if key == "customdata" else _escaped(value, key in TEXT_KEYS) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_escaped(item, drawn) for item in node]
    if drawn and isinstance(node, str):
        return chart_text(node)
    return node

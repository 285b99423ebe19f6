"""Template filters for the shared vocabulary: ``{% load units %}`` then
``{{ a.peak_bps|bps }}``, ``{{ a.vectors|vectors }}``, ``{{ seconds|duration }}``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

from console import units

register = template.Library()


@register.filter
def vector(value: str | None) -> str:
    return units.vector_title(value)


@register.filter
def vectors(values: Iterable[str] | None) -> str:
    return ", ".join(units.vector_title(v) for v in values or []) or "—"


@register.filter
def bps(value: float | None) -> str:
    return units.rate(value, "bps")


@register.filter
def pps(value: float | None) -> str:
    return units.rate(value, "pps")


@register.filter
def rps(value: float | None) -> str:
    return units.rate(value, "rps")


@register.filter
def rates(obj: Any, prefix: str = "") -> str:
    """All measured rates of an alert (bps, pps, rps) or an attack (peak_bps, ...), or "—"."""
    values = [getattr(obj, f"{prefix}{m}", None) for m in ("bps", "pps", "rps")]
    return units.rates(*values) or "—"


@register.filter
def duration(value: Any) -> str:
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    return units.duration(seconds)


@register.filter
def percent(share: float | None) -> str:
    return units.percent(share)

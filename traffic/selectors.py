"""Read-side queries of the traffic app, for reports and dashboards.

The keys of a sample's ``summary`` JSON are the traffic app's to know: other apps ask these
functions for the figures instead of reading the JSON themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from traffic.models import TrafficSample


@dataclass(frozen=True)
class SampleRate:
    """One per-second rate of one sample: ``metric`` is bps, pps or rps."""

    sample: str
    kind: str
    metric: str
    points: list[tuple[datetime, float]]


def ready_samples_for_attacks(attack_ids: Sequence[int], *, limit: int = 50) -> list[TrafficSample]:
    """The parsed samples attached to these attacks, oldest capture first."""
    if not attack_ids:
        return []
    return list(
        TrafficSample.objects.filter(attack_id__in=attack_ids, status=TrafficSample.Status.READY).order_by(
            "start_at", "id"
        )[:limit]
    )


def sample_totals(samples: Iterable[TrafficSample]) -> dict[str, int]:
    """Packets and bytes of the captures, requests of the logs, summed over ``samples``."""
    totals: dict[str, int] = defaultdict(int)
    for s in samples:
        summary = s.summary or {}
        if s.kind == TrafficSample.Kind.PCAP:
            totals["packets"] += int(summary.get("packets") or 0)
            totals["bytes"] += int(summary.get("bytes") or 0)
        else:
            totals["requests"] += int(summary.get("requests") or 0)
    return dict(totals)


def sample_rates(samples: Iterable[TrafficSample]) -> Iterable[SampleRate]:
    """Per-second rates of each sample: bits and packets of a capture, requests of a log."""
    for s in samples:
        per_second = (s.summary or {}).get("per_second") or []
        if s.kind == TrafficSample.Kind.PCAP:
            for metric, key in (("bps", "bits"), ("pps", "packets")):
                points = [(datetime.fromtimestamp(p["t"], tz=UTC), float(p[key])) for p in per_second if p.get(key)]
                if points:
                    yield SampleRate(s.name, s.kind, metric, points)
        else:
            points = [
                (datetime.fromtimestamp(p["t"], tz=UTC), float(p["requests"])) for p in per_second if p.get("requests")
            ]
            if points:
                yield SampleRate(s.name, s.kind, "rps", points)


def sample_top_paths(samples: Iterable[TrafficSample]) -> list[str]:
    """The most requested paths of the logs, in the order their summaries rank them."""
    paths: list[str] = []
    for s in samples:
        paths += [str(p["value"]) for p in (s.summary or {}).get("top_paths") or [] if p.get("value")]
    return paths

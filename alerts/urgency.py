"""How urgent an alert or attack is, with the reasons an engineer reads in the queue.

The score is a sum, capped at 100:

==========================  ===========================================================
severity                    critical 40, high 30, medium 20, low 10, info 0
customer plan               enterprise 20, business 12, pro 6, free 0
magnitude                   the alert's bps, pps or rps against this customer's usual
                            peak (median peak of their last 50 attacks): >= 10x +25,
                            >= 3x +15, >= 1.5x +8; no history yet: +5 for any volume
ongoing                     +10 while the alert or attack is still open
not mitigated               +5 until a mitigation is active for it
==========================  ===========================================================

So an enterprise customer's ongoing, unmitigated critical attack at 14x their usual
peak scores 100 and reads "critical; enterprise plan; 14x this customer's usual peak;
ongoing; not mitigated".
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_POINTS = {"critical": 40, "high": 30, "medium": 20, "low": 10, "info": 0}
PLAN_POINTS = {"enterprise": 20, "business": 12, "pro": 6, "free": 0}


@dataclass(frozen=True)
class Baseline:
    """A customer's usual attack peaks; None where there is no history for that metric."""

    bps: float | None = None
    pps: float | None = None
    rps: float | None = None


def magnitude_ratio(
    baseline: Baseline | None, *, bps: float | None, pps: float | None, rps: float | None
) -> float | None:
    """The largest ratio of this event's volume to the customer's usual peak, per metric."""
    if baseline is None:
        return None
    ratios = [
        value / usual
        for value, usual in ((bps, baseline.bps), (pps, baseline.pps), (rps, baseline.rps))
        if value and usual
    ]
    return max(ratios) if ratios else None


def score(
    *,
    severity: str,
    plan: str | None,
    ratio: float | None,
    has_volume: bool,
    ongoing: bool,
    mitigated: bool,
) -> tuple[int, list[str]]:
    """The urgency (0-100) and its explanation, most important reason first."""
    points = SEVERITY_POINTS.get(severity, 10)
    reasons = [severity]
    if plan:
        points += PLAN_POINTS.get(plan, 0)
        reasons.append(f"{plan} plan")
    else:
        reasons.append("unassigned customer")
    if ratio is not None:
        if ratio >= 10:
            points += 25
        elif ratio >= 3:
            points += 15
        elif ratio >= 1.5:
            points += 8
        reasons.append(
            f"{ratio:.0f}x this customer's usual peak" if ratio >= 1.5 else "within this customer's usual peak"
        )
    elif has_volume:
        points += 5
        reasons.append("no attack history for this customer yet")
    if ongoing:
        points += 10
        reasons.append("ongoing")
    if not mitigated:
        points += 5
        reasons.append("not mitigated")
    return min(points, 100), reasons

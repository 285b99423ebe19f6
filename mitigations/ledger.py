"""Enforcement as a saga over the ledger (``EnforcementStep``): every target step recorded before and after.

* ``step()`` writes the intent (committed: the task runs in autocommit), calls the backend,
  retries a transient failure (``BackendError(permanent=False)``: a busy nft, a timeout; the
  Cloudflare backend already retries 429/5xx honouring ``Retry-After`` inside one call) with
  exponential backoff, then writes the result and the backend's handle, or the failure.
* ``compensate()`` undoes, newest first, every target the ledger says may hold the mitigation
  (done, or intent without a result: the worker may have died after the target wrote it).
* ``reconcile()`` finds mitigations left in "applying" whose ledger has not moved for
  ``ENFORCEMENT_STALE_SECONDS`` (a killed worker, a database that went away between the
  target write and the ledger write), compensates them and marks them failed with the reason.
  It runs when a worker starts and from beat; after it, no target holds a mitigation the
  ledger does not show as applied, and no mitigation is "active" on a target it is not on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from mitigations.backends import BackendError
from mitigations.models import EnforcementStep, Mitigation

log = logging.getLogger(__name__)
Step = EnforcementStep


def _sleep(seconds: float) -> None:  # a seam for the tests
    time.sleep(seconds)


def step(
    mitigation: Mitigation, target: str, op: str, call: Callable[[], dict[str, Any]], *, retry: bool = True
) -> dict[str, Any]:
    """One ledgered backend call: intent, retries on transient errors, then done (with handle) or failed.

    ``retry=False`` for a backend that retries inside the call (Cloudflare): one attempt here.
    """
    row = Step.objects.create(mitigation=mitigation, target=target, op=op)
    attempts = max(1, settings.ENFORCEMENT_STEP_ATTEMPTS) if retry else 1
    for attempt in range(1, attempts + 1):
        try:
            answer = call()
        except BackendError as exc:
            if exc.permanent or attempt == attempts:
                Step.objects.filter(pk=row.pk).update(
                    outcome=Step.Outcome.FAILED,
                    attempts=attempt,
                    handle=exc.answer or {},
                    error=exc.message[:4000],
                    finished_at=timezone.now(),
                )
                raise
            delay = _backoff(attempt, exc)
            log.warning("%s on %s: %s; retry %s in %.1f s", op, target, exc.message, attempt + 1, delay)
            Step.objects.filter(pk=row.pk).update(attempts=attempt, error=exc.message[:4000])
            _sleep(delay)
            continue
        # If the database is gone right here, the row stays "intent": reconcile() undoes the target.
        Step.objects.filter(pk=row.pk).update(
            outcome=Step.Outcome.DONE, attempts=attempt, handle=answer or {}, error="", finished_at=timezone.now()
        )
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


def _backoff(attempt: int, exc: BackendError) -> float:
    retry_after = exc.answer.get("retry_after") if isinstance(exc.answer, dict) else None
    base = settings.ENFORCEMENT_RETRY_BASE_S * (2 ** (attempt - 1))
    try:
        wanted = float(retry_after) if retry_after is not None else base
    except (TypeError, ValueError):
        wanted = base
    return min(settings.ENFORCEMENT_RETRY_MAX_S, max(0.0, wanted))


def holding(mitigation: Mitigation) -> list[tuple[str, dict]]:
    """Targets the ledger says may hold the mitigation, in apply order, with the handle to undo it.

    A target counts when its last apply is done or has no result (intent), and no later
    compensation of it is done.
    """
    state: dict[str, dict] = {}
    for row in Step.objects.filter(mitigation=mitigation).order_by("id"):
        if row.op == Step.Op.APPLY and row.outcome in (Step.Outcome.DONE, Step.Outcome.INTENT):
            state[row.target] = row.handle or {}
        elif row.op in Step.REMOVALS and row.outcome == Step.Outcome.DONE:
            state.pop(row.target, None)
        elif row.op == Step.Op.RECONCILE and row.outcome == Step.Outcome.DONE:
            # What reading the target back found replaces what the interrupted step left unknown.
            if (row.handle or {}).get("found"):
                state[row.target] = state.get(row.target, {})
            else:
                state.pop(row.target, None)
    return list(state.items())


def applied_on(mitigation: Mitigation) -> list[str]:
    """Targets whose last apply is done and not removed since: where the ledger knows it is installed."""
    done: dict[str, bool] = {}
    for row in Step.objects.filter(mitigation=mitigation).order_by("id"):
        if row.op == Step.Op.APPLY:
            done[row.target] = row.outcome == Step.Outcome.DONE
        elif row.op in Step.REMOVALS and row.outcome == Step.Outcome.DONE:
            done[row.target] = False
        elif row.op == Step.Op.RECONCILE and row.outcome == Step.Outcome.DONE:
            done[row.target] = bool((row.handle or {}).get("found"))
    return [t for t, d in done.items() if d]


def summary(mitigation: Mitigation) -> str:
    """What the ledger says is installed, in the engineer's words: "applied (3 of 3)",
    "partially applied (2 of 3)", "applied nowhere", with the targets whose result is unknown."""
    keys = list(mitigation.targets or [])
    total = len(keys)
    held = dict(holding(mitigation))
    known = set(applied_on(mitigation))
    unknown = [k for k in keys if k in held and k not in known]
    installed = [k for k in keys if k in known]
    if not held:
        words = "applied nowhere" if total else "no target"
    elif len(installed) == total:
        words = f"applied ({total} of {total})"
    else:
        words = f"partially applied ({len(installed)} of {total})"
        if installed:
            words += f": on {', '.join(installed)}"
    if unknown:
        words += f"; unknown on {', '.join(unknown)} (started, result not recorded)"
    return words


def compensate(mitigation: Mitigation, undo: Callable[[str, dict], dict[str, Any]]) -> dict[str, Any]:
    """Undo every target the ledger says may hold it, newest first; returns per target the answer or error."""
    results: dict[str, Any] = {}
    for target, handle in reversed(holding(mitigation)):
        try:
            results[target] = step(mitigation, target, Step.Op.COMPENSATE, lambda t=target, h=handle: undo(t, h))
        except BackendError as exc:
            results[target] = {"error": exc.message}
    return results


def read_back(
    mitigation: Mitigation, read: Callable[[str], dict[str, Any] | None], readable: Callable[[str], bool]
) -> dict[str, bool]:
    """Resolve every target left at "intent" by reading the target: a ``reconcile`` step records
    whether it holds the mitigation. A target that cannot be read stays unknown (and is undone anyway)."""
    last: dict[str, Step] = {}
    for row in Step.objects.filter(mitigation=mitigation).exclude(op=Step.Op.RECONCILE).order_by("id"):
        last[row.target] = row
    found: dict[str, bool] = {}
    for target, row in last.items():
        if row.op == Step.Op.APPLY and row.outcome == Step.Outcome.INTENT and readable(target):
            try:
                answer = step(mitigation, target, Step.Op.RECONCILE, lambda t=target: read(t), retry=False)
            except BackendError:
                continue
            found[target] = bool(answer.get("found"))
    return found


def reconcile(*, stale_seconds: int | None = None, now: Any = None) -> dict[str, int]:
    """Compensate mitigations stuck in "applying" (their worker died); mark them failed with the reason."""
    from mitigations import services

    now = now or timezone.now()
    stale = settings.ENFORCEMENT_STALE_SECONDS if stale_seconds is None else stale_seconds
    cutoff = now - timedelta(seconds=stale)
    counts = {"reconciled": 0, "left": 0}
    for mitigation in Mitigation.objects.filter(state=Mitigation.State.APPLYING).select_related("customer"):
        last = Step.objects.filter(mitigation=mitigation).order_by("-id").first()
        moved = (last.finished_at or last.started_at) if last else None
        if moved is not None and moved > cutoff:
            continue  # a worker may still be on it
        if moved is None and mitigation.events.filter(at__gt=cutoff).exists():
            continue
        # One reconciler per mitigation: a worker's start and beat may send it at the same moment.
        claim = f"ledger-reconcile:{mitigation.pk}"
        if not cache.add(claim, 1, timeout=max(60, stale)):
            continue
        try:
            if not Mitigation.objects.filter(pk=mitigation.pk, state=Mitigation.State.APPLYING).exists():
                continue  # another reconciler finished it meanwhile
            counts_for = _reconcile_one(mitigation, services)
        finally:
            cache.delete(claim)
        counts[counts_for] += 1
    return counts


def _reconcile_one(mitigation: Mitigation, services: Any) -> str:
    """Read back what the dead worker left unknown, undo every target that may hold it, mark it failed."""
    read_back(
        mitigation,
        lambda target, m=mitigation: services.backend_read(m, target),
        lambda target, m=mitigation: services.backend_readable(m, target),
    )
    held = [t for t, _ in holding(mitigation)]
    results = compensate(mitigation, lambda target, handle, m=mitigation: services.backend_undo(m, target, handle))
    errors = {t: r["error"] for t, r in results.items() if isinstance(r, dict) and "error" in r}
    if errors:
        log.warning("reconcile %s: undo failed on %s", mitigation.name, errors)
        return "left"  # stays "applying": the next run tries the undo again
    message = (
        "the worker applying it stopped before finishing; undone on "
        + (", ".join(held) if held else "no target (none held it)")
        + " by reconciliation"
    )
    services.mitigation_fail_reconciled(mitigation=mitigation, message=message)
    return "reconciled"

"""Enforcement as a saga: the ledger records each target step before and after; faults leave it true.

Three targets are stand-ins that keep what they hold in memory (what ``nft list`` or the Cloudflare
API would show); the faults are injected where a real one would strike: a worker killed while the
second target is being written, the database gone between a target's write and the ledger's, a
target answering 429, 500, then 200. After reconciliation the ledger and every target agree.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError

from mitigations import ledger, services
from mitigations.backends import Backend, BackendError, Spec, Verification
from mitigations.models import EnforcementStep, Mitigation
from tests.mitigations.test_cloudflare import ZONE, cf, ok, run  # noqa: F401 - the Cloudflare stand-in fixtures
from tests.shared import report_figures

Step = EnforcementStep
TARGETS = ["nftables", "iptables", "cloudflare"]


class WorkerKilled(BaseException):
    """What SIGKILL does to the task: nothing after this point runs (not even except clauses)."""


class StandIn(Backend):
    """A target that holds rules by name, like a ruleset or a zone; ``fail`` scripts its answers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.held: dict[str, dict] = {}
        # Per apply call: None (succeed), a BackendError (refused before writing) or another
        # exception (raised after the target wrote the rule).
        self.script: list[Any] = []
        self.calls: list[str] = []

    def apply(self, spec: Spec) -> dict[str, Any]:
        self.calls.append("apply")
        action = self.script.pop(0) if self.script else None
        if isinstance(action, BackendError):
            raise action
        self.held[spec.name] = {"handle": f"{self.name}-{len(self.calls)}"}
        if action is not None:
            raise action  # after the target wrote it: the worker dies before anything else
        return dict(self.held[spec.name])

    def remove(self, spec: Spec) -> dict[str, Any]:
        self.calls.append("remove")
        gone = self.held.pop(spec.name, None)
        return {"removed": gone is not None, "handle": (spec.answer or {}).get("handle")}

    def verify(self, specs: list[Spec], options: dict) -> Verification:
        names = {s.name for s in specs}
        return Verification(
            location=self.name,
            installed={s.name: ({"packets": 0} if s.name in self.held else None) for s in specs},
            unexpected=[n for n in self.held if n not in names],
        )


@pytest.fixture
def targets(monkeypatch, settings):
    settings.ENFORCEMENT_RETRY_BASE_S = 0
    stand_ins = {name: StandIn(name) for name in TARGETS}
    monkeypatch.setattr(services, "backend_for", lambda name, target=None: stand_ins[name])
    return stand_ins


@pytest.fixture
def approved(draft):
    def make() -> Mitigation:
        # The saga runs over a mitigation's target list, whatever its length; stand-ins play the
        # three targets (a mitigation made in the console names one configured target today).
        mitigation = draft()
        Mitigation.objects.filter(pk=mitigation.pk).update(state=Mitigation.State.APPROVED, targets=TARGETS)
        mitigation.refresh_from_db()
        return mitigation

    return make


def _ledger(mitigation: Mitigation) -> list[tuple[str, str, str]]:
    return list(Step.objects.filter(mitigation=mitigation).values_list("op", "target", "outcome"))


def _agree(mitigation: Mitigation, targets: dict[str, StandIn]) -> None:
    """The ledger's view (targets that may hold it) is what the targets hold, and the state says the same."""
    mitigation.refresh_from_db()
    ledger_says = sorted(t for t, _ in ledger.holding(mitigation))
    targets_hold = sorted(name for name, t in targets.items() if mitigation.name in t.held)
    assert ledger_says == targets_hold, (ledger_says, targets_hold)
    if mitigation.state == Mitigation.State.ACTIVE:
        assert targets_hold == sorted(TARGETS)
    else:
        assert targets_hold == [], (mitigation.state, targets_hold)


def test_each_target_step_is_recorded_before_and_after_with_its_handle(approved, targets):
    mitigation = approved()
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE
    rows = list(Step.objects.filter(mitigation=mitigation))
    assert [(r.op, r.target, r.outcome) for r in rows] == [("apply", t, "done") for t in TARGETS]
    assert [r.handle["handle"] for r in rows] == ["nftables-1", "iptables-1", "cloudflare-1"]
    assert all(r.finished_at and r.finished_at >= r.started_at for r in rows)
    _agree(mitigation, targets)


def test_worker_killed_during_a_three_target_apply_is_undone_by_reconciliation(approved, targets):
    mitigation = approved()
    targets["iptables"].script = [WorkerKilled()]  # dies right after the second target wrote the rule
    with pytest.raises(WorkerKilled):
        services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.APPLYING
    assert _ledger(mitigation) == [("apply", "nftables", "done"), ("apply", "iptables", "intent")]
    assert sorted(t for t, _ in ledger.holding(mitigation)) == ["iptables", "nftables"]  # intent counts as held

    # A redelivered task finds the row claimed and does nothing; the young apply is left to its worker.
    services.mitigation_install(mitigation_id=mitigation.pk)
    assert ledger.reconcile() == {"reconciled": 0, "left": 0}
    counts = ledger.reconcile(stale_seconds=0)  # as at worker start once the apply is stale
    assert counts == {"reconciled": 1, "left": 0}
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.FAILED
    assert "undone on nftables, iptables" in mitigation.error
    assert _ledger(mitigation)[2:] == [("compensate", "iptables", "done"), ("compensate", "nftables", "done")]
    assert targets["cloudflare"].calls == []  # never reached: nothing to undo there
    _agree(mitigation, targets)
    report_figures(
        "enforcement ledger",
        "worker killed during a three-target apply: ledger before reconcile 1 done + 1 intent, "
        "after: 2 compensations, 0 targets hold it, state failed",
    )


def test_database_gone_between_the_target_write_and_the_ledger_write(approved, targets, monkeypatch):
    mitigation = approved()
    real_filter = ledger.Step.objects.filter

    def filter_failing_on_done(*args: Any, **kwargs: Any):
        qs = real_filter(*args, **kwargs)

        class Failing:
            def update(self, **changes: Any) -> int:
                if changes.get("outcome") == Step.Outcome.DONE and not failed:
                    failed.append(True)
                    raise OperationalError("server closed the connection unexpectedly")
                return qs.update(**changes)

            def __getattr__(self, name: str) -> Any:  # reads go to the database as usual
                return getattr(qs, name)

        return Failing()

    failed: list[bool] = []
    monkeypatch.setattr(ledger.Step.objects, "filter", filter_failing_on_done)
    with pytest.raises(OperationalError):
        services.mitigation_install(mitigation_id=mitigation.pk)
    monkeypatch.setattr(ledger.Step.objects, "filter", real_filter)  # the database is back
    assert targets["nftables"].held  # the target wrote it ...
    assert _ledger(mitigation) == [("apply", "nftables", "intent")]  # ... the ledger only knows the intent
    assert ledger.reconcile(stale_seconds=0) == {"reconciled": 1, "left": 0}
    _agree(mitigation, targets)
    assert mitigation.state == Mitigation.State.FAILED


def test_transient_errors_are_retried_with_backoff_then_succeed(approved, targets, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(ledger, "_sleep", slept.append)
    mitigation = approved()
    targets["iptables"].script = [
        BackendError("429 rate limited", permanent=False, answer={"retry_after": "2"}),
        BackendError("500 server error", permanent=False),
    ]
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    assert slept == [2.0, 0.0]  # Retry-After honoured, then the (zeroed) backoff
    row = Step.objects.get(mitigation=mitigation, target="iptables")
    assert (row.outcome, row.attempts, row.error) == ("done", 3, "")
    _agree(mitigation, targets)


def test_a_permanent_failure_compensates_the_targets_already_done(approved, targets):
    mitigation = approved()
    targets["cloudflare"].script = [BackendError("400 bad rule")]
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.FAILED
    assert _ledger(mitigation) == [
        ("apply", "nftables", "done"),
        ("apply", "iptables", "done"),
        ("apply", "cloudflare", "failed"),
        ("compensate", "iptables", "done"),
        ("compensate", "nftables", "done"),
    ]
    assert mitigation.backend_answers["nftables"]["undone"]["removed"] is True
    _agree(mitigation, targets)


def test_an_undo_that_fails_leaves_it_applying_for_the_next_reconciliation(approved, targets, monkeypatch):
    mitigation = approved()
    targets["iptables"].script = [WorkerKilled()]
    with pytest.raises(WorkerKilled):
        services.mitigation_install(mitigation_id=mitigation.pk)
    original = targets["nftables"].remove
    monkeypatch.setattr(targets["nftables"], "remove", lambda spec: (_ for _ in ()).throw(BackendError("nft busy")))
    assert ledger.reconcile(stale_seconds=0) == {"reconciled": 0, "left": 1}
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.APPLYING  # not "failed" while nftables may still hold it
    monkeypatch.setattr(targets["nftables"], "remove", original)
    assert ledger.reconcile(stale_seconds=0) == {"reconciled": 1, "left": 0}
    _agree(mitigation, targets)


def test_cloudflare_stand_in_429_then_500_then_200_one_ledger_step(cf, run):  # noqa: F811
    path = f"/zones/{ZONE}/firewall/access_rules/rules"
    cf.expect("POST", path, status=429, headers={"Retry-After": "0"}, answer={"success": False, "errors": []})
    cf.expect("POST", path, status=500, answer={"success": False, "errors": []})
    cf.expect("POST", path, answer=ok({"id": "ar-42"}))
    mitigation = run(kind="ip_access", value="198.18.0.7", expression="")
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    row = Step.objects.get(mitigation=mitigation)
    assert (row.op, row.target, row.outcome) == ("apply", "cloudflare", "done")
    assert [r["status"] for r in row.handle["requests"]] == [429, 500, 200]
    # The stand-in's state: one rule created, none deleted; the ledger holds its handle.
    assert [m for m, _, _ in cf.seen] == ["POST", "POST", "POST"]
    assert "ar-42" in str(row.handle)
    cf.assert_done()


def test_undo_without_a_recorded_handle_finds_the_cloudflare_rule_by_its_tag(cf, draft, make_target, customer_a):  # noqa: F811
    """The worker died inside the Cloudflare call: Cloudflare created the rule, the ledger has no handle."""
    from mitigations.backends import Spec
    from mitigations.backends.cloudflare import CloudflareBackend

    zone = make_target("cloudflare", name="cf-acme", zone_id=ZONE, customer=customer_a)
    mitigation = draft(target=zone, kind="ip_access", value="198.18.0.7")
    path = f"/zones/{ZONE}/firewall/access_rules/rules"
    ours = {"id": "ar-7", "notes": f"[{mitigation.name}] block 198.18.0.7"}
    theirs = {"id": "ar-8", "notes": "[sw-999999] someone else's"}
    cf.expect("GET", f"{path}?per_page=1000", answer=ok([theirs, ours]))
    cf.expect("DELETE", f"{path}/ar-7", answer=ok({"id": "ar-7"}))
    spec = Spec(name=mitigation.name, compiled=mitigation.compiled["cloudflare"], options={"zone_id": ZONE}, answer={})
    result = services.backend_for("cloudflare", zone).remove(spec)
    assert isinstance(services.backend_for("cloudflare", zone), CloudflareBackend)
    assert result["found_by_tag"] is True and result["deleted"] == [f"{path}/ar-7"]
    cf.assert_done()  # someone else's rule was not touched


def test_the_mitigation_page_shows_the_ledger(approved, targets, client, senior):
    mitigation = approved()
    targets["iptables"].script = [WorkerKilled()]
    with pytest.raises(WorkerKilled):
        services.mitigation_install(mitigation_id=mitigation.pk)
    client.force_login(senior)
    html = client.get(mitigation.get_absolute_url()).content.decode()
    assert 'id="ledger"' in html
    assert "<strong>Started, result not recorded</strong>" in html  # iptables: the worker died in it
    assert html.count("<td>Apply</td>") == 2


# --------------------------------------------------------------------------- several configured targets

ACCOUNT = "01a7362d577a6c3019a474fd6f485823"


@pytest.fixture
def three(draft, make_target, customer_a, monkeypatch, settings):
    """A draft on three configured targets (two nft namespaces and a Cloudflare account), each a stand-in."""
    settings.ENFORCEMENT_RETRY_BASE_S = 0
    edge_a = make_target("nftables", name="edge-a", namespace="edge-a")
    edge_b = make_target("nftables", name="edge-b", namespace="edge-b")
    zone = make_target("cloudflare", name="cf-acme", account_id=ACCOUNT, zone_id=ZONE, customer=customer_a)
    stand_ins = {t.name: StandIn(t.name) for t in (edge_a, edge_b, zone)}
    monkeypatch.setattr(services, "backend_for", lambda name, target=None: stand_ins[target.name])
    mitigation = draft(target=zone, also_targets=[edge_b, edge_a])
    assert not mitigation.compile_errors, mitigation.compile_errors
    Mitigation.objects.filter(pk=mitigation.pk).update(state=Mitigation.State.APPROVED)
    mitigation.refresh_from_db()
    return mitigation, stand_ins


def test_a_mitigation_names_several_targets_each_with_its_own_compiled_form_and_ledger_step(three):
    mitigation, stand_ins = three
    assert mitigation.targets == ["cloudflare", "nftables:edge-a", "nftables:edge-b"]
    assert set(mitigation.compiled) == set(mitigation.targets)
    assert "table" in mitigation.compiled["nftables:edge-a"]["ruleset"]
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    assert _ledger(mitigation) == [("apply", t, "done") for t in mitigation.targets]
    assert all(mitigation.name in s.held for s in stand_ins.values())
    assert ledger.summary(mitigation) == "applied (3 of 3)"


def test_an_apply_delivered_again_writes_no_target_twice(three):
    mitigation, stand_ins = three
    stand_ins["edge-b"].script = [WorkerKilled()]  # dies after edge-b wrote it
    with pytest.raises(WorkerKilled):
        services.mitigation_install(mitigation_id=mitigation.pk)
    # The operator retries the same apply from "applying" (what a redelivery after a reset would do).
    Mitigation.objects.filter(pk=mitigation.pk).update(state=Mitigation.State.APPROVED)
    services.mitigation_install(mitigation_id=mitigation.pk)
    assert stand_ins["cf-acme"].calls == ["apply"]  # done once
    assert stand_ins["edge-a"].calls == ["apply"]
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE


def test_one_target_failing_for_good_leaves_the_others_recorded_and_the_state_says_partial(three, monkeypatch):
    mitigation, stand_ins = three
    stand_ins["edge-b"].script = [BackendError("nft: Could not process rule: No such file or directory")]
    # edge-a's undo fails too (its host went away): it still holds the mitigation, and the page must say so.
    monkeypatch.setattr(stand_ins["edge-a"], "remove", lambda spec: (_ for _ in ()).throw(BackendError("nft busy")))
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.FAILED
    assert _ledger(mitigation)[:3] == [
        ("apply", "cloudflare", "done"),
        ("apply", "nftables:edge-a", "done"),
        ("apply", "nftables:edge-b", "failed"),
    ]
    assert sorted(t for t, _ in ledger.holding(mitigation)) == ["nftables:edge-a"]
    assert ledger.summary(mitigation) == "partially applied (1 of 3): on nftables:edge-a"
    assert mitigation.name in stand_ins["edge-a"].held and not stand_ins["cf-acme"].held


def test_rollback_and_expiry_are_ledger_steps(three):
    mitigation, stand_ins = three
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    services.mitigations_expire_due(now=mitigation.expires_at + timedelta(seconds=1))
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.EXPIRED
    assert _ledger(mitigation)[3:] == [("expire", t, "done") for t in mitigation.targets]
    assert ledger.holding(mitigation) == [] and ledger.summary(mitigation) == "applied nowhere"
    assert not any(s.held for s in stand_ins.values())


def test_a_rollback_that_fails_on_one_target_leaves_it_held_in_the_ledger(three, monkeypatch, engineer):
    mitigation, stand_ins = three
    services.mitigation_install(mitigation_id=mitigation.pk)
    monkeypatch.setattr(stand_ins["edge-b"], "remove", lambda spec: (_ for _ in ()).throw(BackendError("nft busy")))
    with pytest.raises(services.MitigationError):
        services.mitigation_rollback(mitigation=mitigation, user=engineer)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE
    assert [r[1:] for r in _ledger(mitigation)[3:]] == [
        ("cloudflare", "done"),
        ("nftables:edge-a", "done"),
        ("nftables:edge-b", "failed"),
    ]
    assert ledger.summary(mitigation) == "partially applied (1 of 3): on nftables:edge-b"


def test_the_page_and_the_api_say_partially_applied_and_name_every_target(three, monkeypatch, client, senior):
    mitigation, stand_ins = three
    stand_ins["edge-b"].script = [BackendError("nft: Could not process rule")]
    monkeypatch.setattr(stand_ins["edge-a"], "remove", lambda spec: (_ for _ in ()).throw(BackendError("nft busy")))
    services.mitigation_install(mitigation_id=mitigation.pk)
    client.force_login(senior)
    html = client.get(mitigation.get_absolute_url()).content.decode()
    assert "<strong>partially applied (1 of 3): on nftables:edge-a</strong>" in html
    assert "cf-acme <span" in html and "edge-a <span" in html and "edge-b <span" in html
    answer = client.get(f"/api/mitigations/{mitigation.pk}/").json()
    assert answer["enforcement"] == "partially applied (1 of 3): on nftables:edge-a"
    assert answer["all_targets"] == ["cf-acme", "edge-a", "edge-b"]
    assert answer["state"] == "failed"


def test_the_api_creates_a_draft_on_several_targets(make_target, customer_a, engineer, client):
    make_target("nftables", name="edge-a", namespace="edge-a")
    make_target("nftables", name="edge-b", namespace="edge-b")
    client.force_login(engineer)
    body = {
        "customer": customer_a.slug,
        "kind": "firewall_rule",
        "expression": "ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53",
        "target": "edge-a",
        "also_targets": ["edge-b"],
    }
    answer = client.post("/api/mitigations/", body, content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["targets"] == ["nftables:edge-a", "nftables:edge-b"]
    refused = client.post("/api/mitigations/", {**body, "also_targets": ["nowhere"]}, content_type="application/json")
    assert refused.status_code == 400 and "nowhere" in refused.content.decode()


def test_the_drift_check_compares_each_target_with_what_the_ledger_says_it_holds(three, monkeypatch):
    mitigation, stand_ins = three
    services.mitigation_install(mitigation_id=mitigation.pk)
    assert services.mitigations_check_drift() == 0
    stand_ins["edge-b"].held.clear()  # someone flushed edge-b's ruleset by hand
    assert services.mitigations_check_drift() == 1
    mitigation.refresh_from_db()
    assert mitigation.drift == {"nftables:edge-b": "not installed at edge-b"}
    # The ledger says edge-a's copy was removed (an undo outside a rollback): active, yet not in force there.
    Step.objects.create(mitigation=mitigation, target="nftables:edge-a", op=Step.Op.COMPENSATE, outcome="done")
    stand_ins["edge-b"].held[mitigation.name] = {"handle": "again"}
    assert services.mitigations_check_drift() == 1
    mitigation.refresh_from_db()
    assert mitigation.drift == {"nftables:edge-a": "the ledger shows no apply in force on it"}


def test_a_failed_mitigation_the_ledger_says_is_still_on_a_target_is_expected_there(three, monkeypatch):
    mitigation, stand_ins = three
    stand_ins["edge-b"].script = [BackendError("nft: Could not process rule")]
    original = stand_ins["edge-a"].remove
    monkeypatch.setattr(stand_ins["edge-a"], "remove", lambda spec: (_ for _ in ()).throw(BackendError("nft busy")))
    services.mitigation_install(mitigation_id=mitigation.pk)
    monkeypatch.setattr(stand_ins["edge-a"], "remove", original)
    assert services.mitigations_check_drift() == 0  # edge-a holds it, as the ledger says: not a stray
    from mitigations.models import BackendState

    assert BackendState.objects.get(key="edge-a").unexpected == []
    stand_ins["edge-a"].held.clear()
    assert services.mitigations_check_drift() == 1
    mitigation.refresh_from_db()
    assert mitigation.drift == {"nftables:edge-a": "not installed at edge-a"}

"""The life of a mitigation: draft, simulate, propose, approve, apply, expire, roll back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import AuditEvent
from mitigations import services, tasks
from mitigations.models import Mitigation
from mitigations.rules import RuleError
from mitigations.services import MitigationError
from tests.mitigations.conftest import traffic

pytestmark = pytest.mark.django_db
State = Mitigation.State


SCOPE = "ip.dst in {203.0.113.0/24} and "  # Acme's prefix: every network rule carries its customer's scope


def active(proposed, senior, django_capture_on_commit_callbacks, **kwargs) -> Mitigation:
    mitigation = proposed(**kwargs)
    services.mitigation_approve(mitigation=mitigation, user=senior)
    with django_capture_on_commit_callbacks(execute=True):
        services.mitigation_apply(mitigation=mitigation, user=senior)
    mitigation.refresh_from_db()
    return mitigation


def test_transition_map_allows_only_the_documented_moves():
    allowed = {(a, b) for a, targets in Mitigation.TRANSITIONS.items() for b in targets}
    assert ("draft", "proposed") in allowed and ("applying", "active") in allowed
    assert ("draft", "active") not in allowed and ("expired", "active") not in allowed
    assert not Mitigation.TRANSITIONS[State.EXPIRED] and not Mitigation.TRANSITIONS[State.ROLLED_BACK]


def test_create_parses_and_stores_the_canonical_rule(draft):
    mitigation = draft(expression="ip.dst in {203.0.113.0/24} && ip.src in {198.18.0.0/24}  &&  udp.dstport == 53")
    assert mitigation.state == State.DRAFT
    assert mitigation.expression == "ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53"
    assert "nftables" in mitigation.compiled["export"]
    assert mitigation.events.get().to_state == "draft"


def test_a_malformed_rule_is_refused_with_its_position(draft):
    with pytest.raises(RuleError) as err:
        draft(expression='tcp.dstport eq "http"')
    assert err.value.position >= 0


def test_a_target_that_cannot_express_the_rule_is_recorded_and_blocks_the_proposal(draft, engineer, make_target):
    mitigation = draft(
        target=make_target("nftables"),
        expression='http.host eq "acme.example" and http.request.uri.path contains "/wp-login"',
        kind="waf_rule",
    )
    assert "nftables cannot see http.host" in mitigation.compile_errors["nftables"]
    with pytest.raises(MitigationError, match="cannot enforce"):
        services.mitigation_propose(mitigation=mitigation, user=engineer)
    mitigation.refresh_from_db()
    assert mitigation.state == State.DRAFT


def test_viewers_cannot_write_mitigations(draft, viewer):
    with pytest.raises(MitigationError):
        draft(user=viewer)


def test_simulation_reports_attack_share_collateral_and_top_values(draft, engineer, attack_table, baseline_table):
    mitigation = draft()
    services.mitigation_simulate(
        mitigation=mitigation, user=engineer, attack_table=attack_table, baseline_table=baseline_table
    )
    sim = mitigation.simulation
    assert sim["attack"] == {"rows": 100, "matched": 90, "share": 0.9}
    assert sim["baseline"]["share"] == pytest.approx(0.02)
    assert sim["top_matched"]["ip.src"][0] == ["198.18.0.7", 90]
    assert sim["baseline_examples"][0]["ip.src"] == "198.18.0.9"
    assert services.collateral(mitigation) == pytest.approx(0.02)


def test_the_author_cannot_approve_their_own_mitigation(proposed, admin_user):
    mitigation = proposed(user=admin_user)
    with pytest.raises(MitigationError, match="another senior"):
        services.mitigation_approve(mitigation=mitigation, user=admin_user)


def test_engineers_cannot_approve(proposed, engineer):
    mitigation = proposed()
    with pytest.raises(MitigationError, match="senior"):
        services.mitigation_approve(mitigation=mitigation, user=engineer)


def test_one_senior_approval_suffices_for_a_narrow_rule(proposed, senior):
    mitigation = proposed()
    assert mitigation.required_approvals == 1
    services.mitigation_approve(mitigation=mitigation, user=senior)
    assert mitigation.state == State.APPROVED
    assert list(mitigation.approvers.all()) == [senior]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"kind": "ip_access", "value": "CN", "expression": ""}, "country"),
        ({"kind": "ip_access", "value": "AS64500", "expression": ""}, "ASN"),
        ({"expression": SCOPE + "ip.src in {198.18.0.0/15}"}, "/15 or wider"),
        ({"expression": "ip.dst in {2001:db8:100::/48} and ip.src in {3fff::/32}"}, "/32 or wider"),
        (
            {
                "expression": 'http.host eq "acme.example" and not ip.src eq 192.0.2.200',
                "action": "log",
                "kind": "waf_rule",
            },
            "negation",
        ),
    ],
)
def test_broad_rules_need_a_second_senior(proposed, senior, senior2, kwargs, reason, customer_a):
    customer_a.assets.create(kind="prefix", value="2001:db8:100::/48")
    # The negation would hit the whole baseline but the one source it names: a baseline of that source only.
    baseline = traffic([("192.0.2.200", 6, 443)] * 10) if reason == "negation" else None
    mitigation = proposed(baseline=baseline, **kwargs)
    assert mitigation.required_approvals == 2
    assert reason in " ".join(mitigation.approval_reasons)
    services.mitigation_approve(mitigation=mitigation, user=senior)
    assert mitigation.state == State.PROPOSED
    with pytest.raises(MitigationError, match="already approved"):
        services.mitigation_approve(mitigation=mitigation, user=senior)
    services.mitigation_approve(mitigation=mitigation, user=senior2)
    assert mitigation.state == State.APPROVED
    assert mitigation.approvals.count() == 2


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"expression": SCOPE + "ip.src eq 8.8.8.8"}, "Google DNS"),
        ({"expression": SCOPE + "ip.src in {1.1.1.0/24}"}, "Cloudflare DNS"),
        ({"expression": SCOPE + "ip.src eq 203.0.113.77"}, "own prefix 203.0.113.0/24"),
        ({"kind": "ip_access", "value": "203.0.113.0/24", "expression": ""}, "own prefix"),
        ({"expression": 'http.host eq "acme.example"', "kind": "waf_rule"}, "own zone"),
        ({"expression": SCOPE + "ip.src in {192.0.2.0/24}"}, "monitoring"),
        ({"expression": SCOPE + "ip.src eq 8.8.8.8 and udp.srcport eq 53"}, "names 8.8.8.8"),
        ({"expression": SCOPE + "not tcp.dstport in {80 443}"}, "1.1.1.1"),
        ({"expression": SCOPE + 'ip.proto eq "tcp"'}, "edge: origin pulls"),
        ({"expression": SCOPE + "tcp.dstport eq 443"}, "edge: origin pulls"),
    ],
)
def test_safety_check_refuses_to_block_own_assets_and_the_global_allowlist(draft, engineer, kwargs, why):
    mitigation = draft(**kwargs)
    with pytest.raises(MitigationError, match="safety check") as err:
        services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert why in str(err.value)


def test_a_protocol_filter_goes_through_once_it_excludes_the_protected_sources(draft, engineer, customer_a):
    # `udp.srcport eq 53` alone also drops the answers of the resolvers the customer uses.
    with pytest.raises(MitigationError, match="8.8.8.8"):
        services.mitigation_propose(mitigation=draft(expression=SCOPE + "udp.srcport eq 53"), user=engineer)
    scoped = services.scoped_expression(customer_a, "udp.srcport eq 53 and ip.len gt 1200")
    assert scoped.startswith("ip.dst in {203.0.113.0/24} and not ip.src in {")
    assert "8.8.8.8" in scoped and "173.245.48.0/20" in scoped and "203.0.113.0/24" in scoped.split("not")[1]
    assert services.mitigation_propose(mitigation=draft(expression=scoped), user=engineer).state == State.PROPOSED


def test_safety_check_lets_allow_rules_through(draft, engineer):
    mitigation = draft(expression=SCOPE + "ip.src eq 8.8.8.8", action="allow")
    assert services.mitigation_propose(mitigation=mitigation, user=engineer).state == State.PROPOSED


def test_settings_allowlist_is_protected_too(draft, engineer, settings):
    settings.GLOBAL_ALLOWLIST = ["198.18.0.0/30"]
    with pytest.raises(MitigationError, match="settings"):
        services.mitigation_propose(mitigation=draft(), user=engineer)


def test_apply_runs_after_commit_and_ends_active_with_an_expiry(proposed, senior, django_capture_on_commit_callbacks):
    mitigation = proposed()
    services.mitigation_approve(mitigation=mitigation, user=senior)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.mitigation_apply(mitigation=mitigation, user=senior)
    mitigation.refresh_from_db()
    assert mitigation.state == State.APPROVED and len(callbacks) == 1
    callbacks[0]()
    mitigation.refresh_from_db()
    assert mitigation.state == State.ACTIVE
    assert mitigation.backend_answers["export"]["exported"] == [
        "cloudflare",
        "iptables",
        "nftables",
    ]  # placeholders for ids
    assert 590 <= mitigation.seconds_left() <= 600
    assert [e.to_state for e in mitigation.events.exclude(to_state="")] == [
        "draft",
        "proposed",
        "approved",
        "applying",
        "active",
    ]


def test_a_repeated_apply_task_installs_once(proposed, senior, django_capture_on_commit_callbacks):
    mitigation = active(proposed, senior, django_capture_on_commit_callbacks)
    tasks.apply_mitigation(mitigation.pk)  # a redelivered message
    mitigation.refresh_from_db()
    assert mitigation.state == State.ACTIVE
    assert mitigation.events.filter(to_state="applying").count() == 1


def test_only_approved_mitigations_can_be_applied(proposed, senior):
    mitigation = proposed()
    with pytest.raises(MitigationError, match="approved"):
        services.mitigation_apply(mitigation=mitigation, user=senior)


def test_expiry_beat_takes_due_mitigations_off_and_marks_them_expired(
    proposed, senior, django_capture_on_commit_callbacks
):
    due = active(proposed, senior, django_capture_on_commit_callbacks)
    later = active(proposed, senior, django_capture_on_commit_callbacks)
    Mitigation.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert tasks.expire_mitigations() == 1

    due.refresh_from_db()
    later.refresh_from_db()
    assert due.state == State.EXPIRED and due.ended_at is not None
    assert "removal" in due.backend_answers["export"]
    assert later.state == State.ACTIVE
    event = AuditEvent.objects.filter(action="mitigation.expired", object_id=str(due.pk)).get()
    assert event.actor_name == "celery:expire_mitigations"


def test_rollback_by_hand_and_never_twice(proposed, senior, engineer, django_capture_on_commit_callbacks):
    mitigation = active(proposed, senior, django_capture_on_commit_callbacks)
    services.mitigation_rollback(mitigation=mitigation, user=engineer, reason="false positive")
    assert mitigation.state == State.ROLLED_BACK
    with pytest.raises(MitigationError):
        services.mitigation_rollback(mitigation=mitigation, user=engineer)


def test_extend_moves_the_expiry_and_is_for_seniors(proposed, senior, engineer, django_capture_on_commit_callbacks):
    mitigation = active(proposed, senior, django_capture_on_commit_callbacks)
    before = mitigation.expires_at
    with pytest.raises(MitigationError):
        services.mitigation_extend(mitigation=mitigation, user=engineer, seconds=3600)
    services.mitigation_extend(mitigation=mitigation, user=senior, seconds=3600)
    assert mitigation.expires_at == before + timedelta(hours=1)


def test_withdraw_returns_to_draft_and_drops_approvals(proposed, senior, senior2, engineer):
    mitigation = proposed(expression=SCOPE + "ip.src in {198.18.0.0/16}")
    services.mitigation_approve(mitigation=mitigation, user=senior)
    services.mitigation_withdraw(mitigation=mitigation, user=engineer)
    assert mitigation.state == State.DRAFT and mitigation.approvals.count() == 0


def test_every_transition_is_audited(proposed, senior, django_capture_on_commit_callbacks):
    mitigation = active(proposed, senior, django_capture_on_commit_callbacks)
    actions = set(
        AuditEvent.objects.filter(object_id=str(mitigation.pk), object_type="mitigations.mitigation").values_list(
            "action", flat=True
        )
    )
    assert {
        "mitigation.create",
        "mitigation.proposed",
        "mitigation.approved",
        "mitigation.applying",
        "mitigation.active",
    } <= actions


def test_the_tickets_timeline_tells_the_mitigation_story(
    draft, engineer, senior, customer_a, django_capture_on_commit_callbacks, approve
):
    from tickets.models import TimelineEntry
    from tickets.services import ticket_create

    ticket = ticket_create(customer=customer_a, title="DNS flood", user=engineer)
    mitigation = draft(ticket=ticket)
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    approve(mitigation)  # not simulated (no samples): collateral unknown, an admin approves
    with django_capture_on_commit_callbacks(execute=True):
        services.mitigation_apply(mitigation=mitigation, user=senior)
    services.mitigation_rollback(mitigation=mitigation, user=engineer, reason="attack over")

    kinds = list(ticket.timeline.order_by("at", "id").values_list("kind", flat=True))
    assert TimelineEntry.Kind.MITIGATION_PROPOSED in kinds
    assert TimelineEntry.Kind.MITIGATION_APPLIED in kinds
    assert TimelineEntry.Kind.MITIGATION_EXPIRED in kinds
    ticket.refresh_from_db()
    assert ticket.mitigated_at is not None


def test_a_ticket_of_another_customer_is_refused(draft, engineer, customer_b):
    from tickets.services import ticket_create

    other = ticket_create(customer=customer_b, title="elsewhere", user=engineer)
    with pytest.raises(MitigationError, match="another customer"):
        draft(ticket=other)


def test_a_mitigation_left_applying_by_a_lost_worker_is_failed_by_the_beat(proposed, senior):
    mitigation = proposed()
    services.mitigation_approve(mitigation=mitigation, user=senior)
    services._transition(mitigation, State.APPLYING, user=None, message="applying", expected=State.APPROVED)
    assert services.mitigations_fail_stuck() == 0  # still within its time
    assert services.mitigations_fail_stuck(now=timezone.now() + timedelta(hours=1)) == 1
    mitigation.refresh_from_db()
    assert mitigation.state == State.FAILED and "never finished" in mitigation.error


def test_an_active_mitigation_marks_its_attack_mitigated_until_it_ends(
    proposed, senior, customer_a, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from alerts.models import Attack
    from alerts.services import attack_summarize

    now = timezone.now()
    attack = Attack.objects.create(customer=customer_a, target="203.0.113.10", started_at=now, last_seen=now)
    attack_summarize(attack_id=attack.pk)
    mitigation = proposed(attack=attack)
    services.mitigation_approve(mitigation=mitigation, user=senior)
    with django_capture_on_commit_callbacks(execute=True):
        services.mitigation_apply(mitigation=mitigation, user=senior)
    attack.refresh_from_db()
    assert attack.mitigated
    with django_capture_on_commit_callbacks(execute=True):
        services.mitigation_rollback(mitigation=mitigation, user=senior, reason="customer asked")
    attack.refresh_from_db()
    assert not attack.mitigated

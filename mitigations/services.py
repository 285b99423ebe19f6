"""Everything that changes a mitigation or a list: one keyword-only function per verb.

The life of a mitigation, in the engineer's words:

1. ``mitigation_create``: write the rule (or pick the address, the list, the rate). It
   is parsed and type-checked at once and compiled for every target, so a target that
   cannot express it says so now (the reason is stored and shown).
2. ``mitigation_simulate``: run it over the attack's and the baseline's traffic: how much
   of the attack it catches, how much good traffic it would hit (the collateral).
3. ``mitigation_propose``: ask for approval. Refused while a target refuses the rule, or
   when it would block the customer's own assets or anything on the global allowlist.
4. ``mitigation_approve``: a senior engineer other than the author approves; a second
   senior is needed when the collateral is above the threshold or the rule is broad.
5. ``mitigation_apply`` queues ``mitigation_install`` (Celery), which claims the row
   (approved → applying, by conditional update: a duplicate task does nothing), installs
   on each target and ends active, or failed with the backend's message.
6. ``mitigations_expire_due`` (beat) removes what has expired; ``mitigation_extend``
   and ``mitigation_rollback`` by hand; ``mitigations_check_drift`` (beat) compares what
   each backend reads back with what should be active.

Every state change writes a ``MitigationEvent``, an audit event and, when the
mitigation belongs to a ticket, a line on the ticket's timeline.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console import errors, roles
from console.audit import audit_record, snapshot
from console.context import current_system_actor
from console.models import Asset, Customer
from mitigations import compiling, ledger
from mitigations.backends import BACKENDS, Backend, BackendError, Spec, get_backend
from mitigations.listformats import normalise, parse_list
from mitigations.models import (
    Approval,
    BackendState,
    EnforcementStep,
    GlobalAllowlistEntry,
    ListItem,
    Mitigation,
    MitigationEvent,
    MitigationList,
)
from mitigations.rules import CompileError, Rule, evaluate, parse
from mitigations.rules.ast import IP, Compare, FieldRef, Logical, Not, to_text, walk

log = logging.getLogger(__name__)

State = Mitigation.State
AUDITED = ["state", "kind", "expression", "value", "action", "targets", "ttl_seconds", "expires_at", "error"]
LIST_NAME = re.compile(r"[a-z0-9_]{1,50}")
BLOCKING_ACTIONS = {"block", "challenge", "managed_challenge"}


class MitigationError(errors.ServiceError):
    """A mitigation cannot do what was asked; the message says why, in an engineer's words."""


class MitigationForbidden(MitigationError, errors.RoleRefused):
    """The user's role may not do this to a mitigation (403)."""


class MitigationConflict(MitigationError, errors.StateConflict):
    """The mitigation's state does not allow it (409)."""


# --------------------------------------------------------------------------- helpers


def _actor_name(user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return current_system_actor.get() or "system"


def _record(
    mitigation: Mitigation,
    *,
    user: Any,
    action: str,
    message: str,
    before: dict | None = None,
    from_state: str = "",
    to_state: str = "",
) -> None:
    MitigationEvent.objects.create(
        mitigation=mitigation,
        actor_name=_actor_name(user),
        from_state=from_state,
        to_state=to_state,
        message=message[:4000],
    )
    audit_record(
        action=f"mitigation.{action}",
        obj=mitigation,
        before=before,
        after=snapshot(mitigation, AUDITED),
        actor=user,
    )
    _timeline(
        mitigation,
        user=user,
        text=f"Mitigation {mitigation.name} ({mitigation.summary}): {message}",
        event=TIMELINE_EVENTS.get(to_state, "") if to_state != from_state else "",
    )


def _timeline(mitigation: Mitigation, *, user: Any, text: str, event: str = "") -> None:
    """A line on the ticket's timeline, through the tickets app's own services."""
    if not mitigation.ticket_id:
        return
    from tickets import services as tickets_services

    data = {"mitigation": mitigation.pk, "name": mitigation.name, "state": mitigation.state}
    if event in tickets_services.MITIGATION_KINDS:
        tickets_services.ticket_record_mitigation(
            ticket=mitigation.ticket, event=event, description=text, user=user, data=data
        )
    else:
        tickets_services.timeline_add(ticket=mitigation.ticket, kind="note", user=user, body=text, data=data)


# Which state changes are the ticket's "mitigation proposed / applied / expired" entries.
TIMELINE_EVENTS = {"proposed": "proposed", "active": "applied", "expired": "expired", "rolled_back": "expired"}


def _transition(
    mitigation: Mitigation, to_state: str, *, user: Any, message: str, expected: str | None = None, **changes: Any
) -> bool:
    """Move ``expected`` (default: the row's current state) → ``to_state`` by conditional update.

    Returns False, changing nothing, when the row is no longer in ``expected`` (someone
    else moved it first) or is already in ``to_state``.
    """
    expected = expected or mitigation.state
    if expected == to_state:
        return False
    if to_state not in Mitigation.TRANSITIONS.get(expected, frozenset()):
        raise MitigationConflict(f"{mitigation.name} is {expected}: it cannot become {to_state.replace('_', ' ')}")
    before = snapshot(mitigation, AUDITED)
    claimed = Mitigation.objects.filter(pk=mitigation.pk, state=expected).update(state=to_state, **changes)
    if not claimed:
        mitigation.refresh_from_db()
        return False
    mitigation.state = to_state
    for key, value in changes.items():
        setattr(mitigation, key, value)
    _record(
        mitigation, user=user, action=to_state, message=message, before=before, from_state=expected, to_state=to_state
    )
    return True


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise MitigationError(message)


def _require_role(condition: bool, message: str) -> None:
    if not condition:
        raise MitigationForbidden(message)


def _require_state(condition: bool, message: str) -> None:
    if not condition:
        raise MitigationConflict(message)


def backend_for(name: str) -> Backend:
    """A backend configured from settings."""
    if name == "nftables":
        return get_backend(name, namespace=settings.NFT_NAMESPACE)
    if name == "iptables":
        return get_backend(name, namespace=settings.IPTABLES_NAMESPACE)
    if name == "cloudflare":
        return get_backend(
            name,
            base_url=settings.CLOUDFLARE_API_BASE,
            token=settings.CLOUDFLARE_API_TOKEN,
            max_retries=settings.CLOUDFLARE_MAX_RETRIES,
            backoff=settings.CLOUDFLARE_BACKOFF,
        )
    return get_backend(name)


def _options(mitigation: Mitigation) -> dict:
    options = dict(mitigation.options or {})
    if settings.CLOUDFLARE_ACCOUNT_ID:
        options.setdefault("account_id", settings.CLOUDFLARE_ACCOUNT_ID)
    return options


def _spec(mitigation: Mitigation, target: str) -> Spec:
    return Spec(
        name=mitigation.name,
        compiled=(mitigation.compiled or {}).get(target, {}),
        options=_options(mitigation),
        answer=(mitigation.backend_answers or {}).get(target, {}),
    )


def _list_values(names: Iterable[str], customer: Customer | None) -> dict[str, list[str]]:
    """The current items of the ``$lists`` a rule names, for evaluation and compilation."""
    now = timezone.now()
    lists = {}
    for name in names:
        mlist = MitigationList.objects.usable_by(customer).filter(name=name).first()
        if mlist is None:
            raise MitigationError(f"${name}: there is no list of that name for this customer")
        lists[name] = list(
            mlist.items.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values_list("value", flat=True)
        )
    return lists


def mitigation_rule(mitigation: Mitigation) -> Rule:
    """The rule a mitigation enforces, whatever its kind (an IP access value and a list become rules too)."""
    if mitigation.kind == Mitigation.Kind.IP_ACCESS:
        return parse(compiling.expression_for_value(mitigation.value))
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        return parse(compiling.expression_for_list(mitigation.mitigation_list.name))
    return parse(mitigation.expression)


def _rule_lists(mitigation: Mitigation, rule: Rule) -> dict[str, list[str]]:
    return _list_values(rule.lists, mitigation.customer)


def _list_items(mitigation_list: MitigationList | None) -> list[tuple[str, int | None, str]]:
    if mitigation_list is None:
        return []
    now = timezone.now()
    return [
        (item.value, item.ttl(now), item.comment)
        for item in mitigation_list.items.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    ]


def _compile(mitigation: Mitigation) -> None:
    compiled, errors = {}, {}
    rule = mitigation_rule(mitigation)
    lists = _rule_lists(mitigation, rule) if mitigation.kind != Mitigation.Kind.IP_LIST else {}
    for target in mitigation.targets:
        try:
            compiled[target] = compiling.compile_for(
                target,
                name=mitigation.name,
                kind=mitigation.kind,
                action=mitigation.action,
                expression=mitigation.expression,
                value=mitigation.value,
                rate=mitigation.rate,
                items=_list_items(mitigation.mitigation_list),
                list_name=mitigation.mitigation_list.name if mitigation.mitigation_list_id else "",
                lists=lists,
                options=_options(mitigation),
                description=mitigation.title or mitigation.summary,
            )
        except (CompileError, ValueError) as exc:
            errors[target] = str(exc)
    mitigation.compiled, mitigation.compile_errors = compiled, errors


# --------------------------------------------------------------------------- create, simulate, propose


def mitigation_create(
    *,
    customer: Customer,
    kind: str,
    user: Any,
    targets: Sequence[str],
    expression: str = "",
    value: str = "",
    mitigation_list: MitigationList | None = None,
    action: str = "block",
    ttl_seconds: int | None = None,
    rate: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    attack: Any = None,
    ticket: Any = None,
    title: str = "",
) -> Mitigation:
    """A draft mitigation, parsed, type-checked and compiled for each target.

    Raises ``RuleError`` (with a position) for a malformed rule and ``MitigationError``
    for anything else wrong; a target that refuses the rule is not an error here: its
    reason is stored in ``compile_errors`` and proposing is refused until it is fixed.
    """
    _require_role(roles.can_act(user), "only engineers may write mitigations")
    _require(kind in Mitigation.Kind.values, f"unknown kind {kind!r}")
    _require(action in Mitigation.Action.values, f"unknown action {action!r}")
    targets = list(dict.fromkeys(targets))
    _require(bool(targets), "choose at least one target")
    unknown = [t for t in targets if t not in BACKENDS]
    _require(not unknown, f"unknown target(s): {', '.join(unknown)}")
    ttl = int(ttl_seconds or settings.MITIGATION_DEFAULT_TTL)
    _require(0 < ttl <= settings.MITIGATION_MAX_TTL, f"the time to live must be 1 to {settings.MITIGATION_MAX_TTL} s")
    if kind == Mitigation.Kind.IP_ACCESS:
        try:
            compiling.access_target(value)
        except CompileError as exc:
            raise MitigationError(exc.reason) from exc
        expression = ""
    elif kind == Mitigation.Kind.IP_LIST:
        _require(mitigation_list is not None, "an IP list mitigation needs a list")
        _require(mitigation_list.customer_id in (None, customer.pk), "that list belongs to another customer")
        expression = ""
    else:
        _require(bool(expression.strip()), "write the rule's expression")
        expression = parse(expression).to_text()  # RuleError with a position if malformed
    if kind == Mitigation.Kind.RATE_LIMIT:
        rate = dict(rate or {})
        _require(int(rate.get("requests") or 0) > 0, "a rate limit needs requests > 0")
        _require(int(rate.get("period") or 0) > 0, "a rate limit needs a period in seconds")
    if attack is not None:
        _require(attack.customer_id in (None, customer.pk), "that attack belongs to another customer")
    if ticket is not None:
        _require(ticket.customer_id == customer.pk, "that ticket belongs to another customer")
    with transaction.atomic():
        mitigation = Mitigation.objects.create(
            customer=customer,
            attack=attack,
            title=title[:200],
            kind=kind,
            expression=expression,
            value=value.strip(),
            mitigation_list=mitigation_list,
            action=action,
            targets=targets,
            options=dict(options or {}),
            rate=dict(rate or {}),
            ttl_seconds=ttl,
            author=user,
            ticket=ticket,
        )
        _compile(mitigation)
        mitigation.save(update_fields=["compiled", "compile_errors"])
        refused = "; ".join(mitigation.compile_errors.values())
        _record(
            mitigation,
            user=user,
            action="create",
            to_state=State.DRAFT,
            message="drafted" + (f"; refused by: {refused}" if refused else ""),
        )
    return mitigation


def simulate_tables(
    rule: Rule | str,
    attack: pa.Table | None,
    baseline: pa.Table | None,
    lists: Mapping[str, Sequence] | None = None,
    *,
    top: int = 5,
    examples: int = 5,
) -> dict[str, Any]:
    """Run ``rule`` over attack and baseline traffic (pyarrow tables with rule-field columns).

    Returns the shares matched (the baseline share is the collateral the approval gates
    on), the values the matched attack rows have most often for each field the rule
    reads, and a few baseline rows it would hit, for the engineer to judge.
    """
    rule = parse(rule) if isinstance(rule, str) else rule
    out: dict[str, Any] = {"rule": rule.to_text(), "fields": sorted(rule.fields)}
    for label, table in (("attack", attack), ("baseline", baseline)):
        if table is None:
            out[label] = None
            continue
        matched = evaluate(rule, table, lists)
        rows, hits = table.num_rows, int(matched.sum())
        out[label] = {"rows": rows, "matched": hits, "share": (hits / rows) if rows else 0.0}
        shown = [f for f in rule.fields if f in table.column_names]
        if label == "attack":
            picked = table.filter(pa.array(matched)).select(shown) if hits else None
            out["top_matched"] = (
                {
                    field: [[_plain(v), c] for v, c in Counter(map(_plain, picked[field].to_pylist())).most_common(top)]
                    for field in shown
                }
                if picked is not None
                else {}
            )
        else:
            rows_hit = table.filter(pa.array(matched)).slice(0, examples) if hits else None
            keep = [
                c
                for c in table.column_names
                if c in rule.fields or c in ("ip.src", "http.host", "http.user_agent", "http.request.uri.path")
            ]
            out["baseline_examples"] = (
                [{k: _plain(v) for k, v in row.items()} for row in rows_hit.select(keep).to_pylist()]
                if rows_hit is not None
                else []
            )
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def traffic_tables(mitigation: Mitigation) -> tuple[pa.Table | None, pa.Table | None]:
    """The attack and baseline traffic for a mitigation, from the traffic app's parsed samples.

    Attack: the newest ready sample labelled attack on the mitigation's attack. Baseline:
    the newest ready baseline sample on that attack, else the customer's newest. Packet
    captures for L3/L4 rules, request logs for L7 rules.
    """
    from traffic.models import TrafficSample
    from traffic.services import sample_table

    rule = mitigation_rule(mitigation)
    ready = TrafficSample.objects.filter(customer=mitigation.customer, status=TrafficSample.Status.READY)
    ready = (
        ready.exclude(kind=TrafficSample.Kind.PCAP)
        if rule.layer == "L7"
        else ready.filter(kind=TrafficSample.Kind.PCAP)
    )
    attack_sample = baseline_sample = None
    if mitigation.attack_id:
        attack_sample = ready.filter(attack_id=mitigation.attack_id, label=TrafficSample.Label.ATTACK).first()
        baseline_sample = ready.filter(attack_id=mitigation.attack_id, label=TrafficSample.Label.BASELINE).first()
    baseline_sample = baseline_sample or ready.filter(label=TrafficSample.Label.BASELINE).first()
    return (
        sample_table(attack_sample) if attack_sample else None,
        sample_table(baseline_sample) if baseline_sample else None,
    )


def mitigation_simulate(
    *,
    mitigation: Mitigation,
    user: Any = None,
    attack_table: pa.Table | None = None,
    baseline_table: pa.Table | None = None,
) -> Mitigation:
    """Store the simulation over the given tables, or over the traffic samples of the attack."""
    if attack_table is None and baseline_table is None:
        attack_table, baseline_table = traffic_tables(mitigation)
    _require(
        attack_table is not None or baseline_table is not None,
        "no traffic to simulate on: attach attack and baseline samples to the attack",
    )
    rule = mitigation_rule(mitigation)
    lists = _rule_lists(mitigation, rule)
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        lists = {mitigation.mitigation_list.name: [v for v, _, _ in _list_items(mitigation.mitigation_list)]}
    result = simulate_tables(rule, attack_table, baseline_table, lists)
    mitigation.simulation = result
    mitigation.simulated_at = timezone.now()
    fields = ["simulation", "simulated_at"]
    if mitigation.state in (State.DRAFT, State.PROPOSED):
        mitigation.required_approvals, mitigation.approval_reasons = approvals_needed(mitigation)
        fields += ["required_approvals", "approval_reasons"]
    mitigation.save(update_fields=fields)
    attack, baseline = result.get("attack"), result.get("baseline")
    _record(
        mitigation,
        user=user,
        action="simulate",
        message="simulated: "
        + (f"{attack['share']:.1%} of attack matched" if attack else "no attack traffic")
        + (f", {baseline['share']:.2%} of baseline matched" if baseline else ", no baseline"),
    )
    return mitigation


def collateral(mitigation: Mitigation) -> float | None:
    baseline = (mitigation.simulation or {}).get("baseline")
    return float(baseline["share"]) if baseline else None


def broad_reasons(mitigation: Mitigation) -> list[str]:
    """Why a rule hits a lot of the Internet at once: country, ASN, a /16 or wider, or a negation."""
    reasons = []
    rule = mitigation_rule(mitigation)
    if "ip.src.country" in rule.fields:
        reasons.append("it matches a whole country")
    if "ip.src.asnum" in rule.fields:
        reasons.append("it matches a whole ASN")
    networks = _source_networks(rule)
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        networks += [ipaddress.ip_network(v, strict=False) for v, _, _ in _list_items(mitigation.mitigation_list)]
    for values in _rule_lists(mitigation, rule).values():
        networks += [ipaddress.ip_network(v, strict=False) for v in values if _is_network(v)]
    wide = [n for n in networks if n.prefixlen <= (16 if n.version == 4 else 32)]
    if wide:
        reasons.append(
            f"{wide[0]} is a /{wide[0].prefixlen} or wider" + (f" (+{len(wide) - 1} more)" if len(wide) > 1 else "")
        )
    if mitigation.kind not in (Mitigation.Kind.IP_ACCESS, Mitigation.Kind.IP_LIST):
        empty = pa.table({"ip.src": pa.array([None], pa.string())})
        if bool(evaluate(rule, empty, _rule_lists(mitigation, rule))[0]):
            reasons.append("it matches traffic that has none of the values it names (a negation)")
    return reasons


def _source_networks(rule: Rule) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The addresses and networks the rule compares ``ip.src`` with (not ``ip.dst``: that is the victim)."""
    out = []
    for node in walk(rule.ast):
        if isinstance(node, Compare) and isinstance(node.left, FieldRef) and node.left.name == "ip.src":
            out += [n.value for n in walk(node.right) if isinstance(n, IP)]
    return out


def _is_network(value: Any) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return True


def approvals_needed(mitigation: Mitigation) -> tuple[int, list[str]]:
    reasons = broad_reasons(mitigation)
    share = collateral(mitigation)
    threshold = settings.MITIGATION_COLLATERAL_THRESHOLD
    if share is not None and share > threshold:
        reasons.append(f"it matches {share:.2%} of baseline traffic (threshold {threshold:.2%})")
    return (2 if reasons else 1), reasons


def protected_addresses(customer: Customer) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    """The networks no mitigation of this customer may block: their prefixes, the global allowlist."""
    out = []
    for asset in Asset.objects.filter(customer=customer, kind=Asset.Kind.PREFIX):
        out.append((ipaddress.ip_network(asset.value, strict=False), f"the customer's own prefix {asset.value}"))
    for entry in GlobalAllowlistEntry.objects.all():
        out.append((entry.network(), f"global allowlist: {entry.reason}"))
    for value in settings.GLOBAL_ALLOWLIST:
        out.append((ipaddress.ip_network(value, strict=False), "global allowlist (settings)"))
    return out


def _sample_points(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    first, last = net.network_address, net.broadcast_address
    middle = first + (net.num_addresses // 2)
    return list(dict.fromkeys(str(a) for a in (first, middle, last)))


def safety_problems(mitigation: Mitigation) -> list[str]:
    """Reasons the rule must not go live: it would block the customer's own assets or an allowlisted address.

    The rule is evaluated over a small table of those addresses as ``ip.src`` (and the
    customer's zones as ``http.host``); every address the rule itself names that falls in
    a protected network is added, so a /32 inside an allowlisted /24 is caught too.
    """
    if mitigation.action not in BLOCKING_ACTIONS:
        return []
    rule = mitigation_rule(mitigation)
    lists = _rule_lists(mitigation, rule)
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        lists = {mitigation.mitigation_list.name: [v for v, _, _ in _list_items(mitigation.mitigation_list)]}
    protected = protected_addresses(mitigation.customer)
    named = _source_networks(rule)
    named += [ipaddress.ip_network(v, strict=False) for values in lists.values() for v in values if _is_network(v)]
    sampled: list[tuple[str | None, str | None, str]] = []
    overlaps: list[tuple[str, str]] = []
    for net, why in protected:
        sampled += [(a, None, why) for a in _sample_points(net)]
        for other in named:
            if other.version == net.version and other.overlaps(net):
                inside = other if other.subnet_of(net) else net
                overlaps.append((str(inside.network_address), why))
    for asset in Asset.objects.filter(customer=mitigation.customer, kind__in=[Asset.Kind.ZONE, Asset.Kind.SPECTRUM]):
        host = asset.value.rsplit(":", 1)[0] if asset.kind == Asset.Kind.SPECTRUM else asset.value
        sampled.append((None, host, f"the customer's own {asset.get_kind_display().lower()} {asset.value}"))
    problems = []
    if sampled:
        # Traffic from (or to) exactly these, with nothing else known: the rule's other clauses are false.
        table = pa.table(
            {
                "ip.src": pa.array([r[0] for r in sampled], pa.string()),
                "http.host": pa.array([r[1] for r in sampled], pa.string()),
            }
        )
        for hit, (address, host, why) in zip(evaluate(rule, table, lists), sampled, strict=True):
            if hit:
                problems.append(f"it would {mitigation.action} {address or host} ({why})")
    if overlaps:
        # The rule names a protected address itself: refused if *some* packet from it could match,
        # whatever the rule's other clauses (ports, lengths) say.
        table = pa.table({"ip.src": pa.array([a for a, _ in overlaps], pa.string())})
        for hit, (address, why) in zip(_possibly(rule.ast, table, lists), overlaps, strict=True):
            if hit:
                problems.append(f"it names {address} and could {mitigation.action} it ({why})")
    return list(dict.fromkeys(problems))


def _possibly(node: Any, table: pa.Table, lists: Mapping[str, Sequence]) -> Any:
    """Rows for which some value of the fields not in ``table`` makes ``node`` true (three-valued logic)."""
    can_true, _ = _three_valued(node, table, lists)
    return can_true


def _three_valued(node: Any, table: pa.Table, lists: Mapping[str, Sequence]) -> tuple[Any, Any]:
    import numpy as np

    n = table.num_rows
    if isinstance(node, Not):
        t, f = _three_valued(node.operand, table, lists)
        return f, t
    if isinstance(node, Logical):
        parts = [_three_valued(item, table, lists) for item in node.items]
        if node.op == "and":
            return np.logical_and.reduce([p[0] for p in parts]), np.logical_or.reduce([p[1] for p in parts])
        if node.op == "or":
            return np.logical_or.reduce([p[0] for p in parts]), np.logical_and.reduce([p[1] for p in parts])
        t, f = parts[0]
        for t2, f2 in parts[1:]:
            t, f = (t & f2) | (f & t2), (t & t2) | (f & f2)
        return t, f
    if (
        isinstance(node, Compare)
        and isinstance(node.left, FieldRef)
        and node.left.name in table.column_names
        and node.left.key is None
        and node.left.index is None
    ):
        value = np.asarray(evaluate(parse(to_text(node)), table, lists), dtype=bool)
        return value, ~value
    return np.ones(n, bool), np.ones(n, bool)


def mitigation_propose(*, mitigation: Mitigation, user: Any) -> Mitigation:
    """Ask for approval: refused while a target refuses the rule or the safety check fails."""
    _require_role(roles.can_act(user), "only engineers may propose mitigations")
    if mitigation.state == State.PROPOSED:
        return mitigation
    _require_state(mitigation.state == State.DRAFT, f"only a draft can be proposed (this one is {mitigation.state})")
    _compile(mitigation)  # lists may have changed since the draft
    mitigation.save(update_fields=["compiled", "compile_errors"])
    if mitigation.compile_errors:
        raise MitigationError("a target cannot enforce it: " + "; ".join(mitigation.compile_errors.values()))
    problems = safety_problems(mitigation)
    if problems:
        raise MitigationError("refused by the safety check: " + "; ".join(problems))
    if mitigation.simulation is None and mitigation.attack_id:
        # No samples yet (or unreadable): the approver sees "not simulated".
        with contextlib.suppress(MitigationError, ValueError, OSError):
            mitigation_simulate(mitigation=mitigation, user=user)
    required, reasons = approvals_needed(mitigation)
    _transition(
        mitigation,
        State.PROPOSED,
        user=user,
        message="proposed; needs " + ("two approvals: " + "; ".join(reasons) if required > 1 else "one approval"),
        required_approvals=required,
        approval_reasons=reasons,
        proposed_at=timezone.now(),
    )
    return mitigation


def mitigation_withdraw(*, mitigation: Mitigation, user: Any) -> Mitigation:
    """Back to draft (to edit it), dropping the approvals given so far."""
    _require_role(roles.can_act(user), "only engineers may withdraw mitigations")
    with transaction.atomic():
        mitigation.approvals.all().delete()
        _transition(mitigation, State.DRAFT, user=user, message="withdrawn to draft", expected=State.PROPOSED)
    return mitigation


# --------------------------------------------------------------------------- approve and apply


def mitigation_approve(*, mitigation: Mitigation, user: Any, comment: str = "") -> Mitigation:
    """One senior approval; the mitigation is approved when it has as many as it needs."""
    _require_role(roles.can_approve(user), "only a senior engineer or an admin may approve")
    _require_role(user.pk != mitigation.author_id, "you wrote this mitigation: another senior engineer must approve it")
    with transaction.atomic():
        locked = Mitigation.objects.select_for_update().get(pk=mitigation.pk)
        _require_state(
            locked.state == State.PROPOSED, f"only a proposed mitigation can be approved (it is {locked.state})"
        )
        _require_state(
            not locked.approvals.filter(user=user).exists(), "you already approved it: another senior must approve"
        )
        problems = safety_problems(locked)
        _require(not problems, "refused by the safety check: " + "; ".join(problems))
        Approval.objects.create(mitigation=locked, user=user, comment=comment[:2000])
        count = locked.approvals.count()
        audit_record(
            action="mitigation.approval",
            obj=locked,
            after={"approver": user.get_username(), "count": count},
            actor=user,
        )
        if count >= locked.required_approvals:
            _transition(
                locked,
                State.APPROVED,
                user=user,
                message=f"approved ({count} of {locked.required_approvals})",
                approved_at=timezone.now(),
            )
        else:
            MitigationEvent.objects.create(
                mitigation=locked,
                actor_name=_actor_name(user),
                message=f"approval {count} of {locked.required_approvals} by {user.get_username()}",
            )
            _timeline(
                locked,
                user=user,
                text=f"Mitigation {locked.name}: approval {count} of "
                f"{locked.required_approvals} by {user.get_username()}",
            )
    mitigation.refresh_from_db()
    return mitigation


def mitigation_apply(*, mitigation: Mitigation, user: Any) -> Mitigation:
    """Queue the installation (after commit); the page follows its progress."""
    _require_role(roles.can_approve(user), "only a senior engineer or an admin may apply mitigations")
    _require_state(
        mitigation.state == State.APPROVED, f"only an approved mitigation can be applied (it is {mitigation.state})"
    )
    from mitigations import tasks

    audit_record(action="mitigation.apply_requested", obj=mitigation, actor=user)
    transaction.on_commit(lambda: tasks.apply_mitigation.delay(mitigation.pk))
    return mitigation


def mitigation_install(*, mitigation_id: int) -> Mitigation | None:
    """The task body: claim approved → applying, install on every target, end active or failed.

    A second delivery of the same task finds the row already claimed and does nothing.
    When one target fails, the targets already installed are removed again, so a failed
    mitigation is installed nowhere.
    """
    mitigation = Mitigation.objects.select_related("customer", "mitigation_list").filter(pk=mitigation_id).first()
    if mitigation is None or mitigation.state != State.APPROVED:
        return mitigation
    if not _transition(mitigation, State.APPLYING, user=None, message="applying", expected=State.APPROVED, progress=0):
        return mitigation
    _compile(mitigation)  # list items and their remaining TTLs as of now
    answers: dict[str, Any] = {}
    done: list[str] = []
    for index, target in enumerate(mitigation.targets):
        backend = backend_for(target)
        try:
            # The ledger (mitigations.ledger) records the intent before the call and the handle after it.
            answers[target] = ledger.step(
                mitigation,
                target,
                EnforcementStep.Op.APPLY,
                lambda b=backend, t=target: b.apply(_spec(mitigation, t)),
                retry=not backend.retries_itself,
            )
        except BackendError as exc:
            answers[target] = {"error": exc.message, **exc.answer}
            undone = ledger.compensate(mitigation, lambda t, handle: backend_undo(mitigation, t, handle))
            for installed, result in undone.items():
                if installed in answers:
                    key = "undo_error" if isinstance(result, dict) and "error" in result else "undone"
                    answers[installed][key] = result.get("error") if key == "undo_error" else result
            _transition(
                mitigation,
                State.FAILED,
                user=None,
                message=f"{target} failed: {exc.message}",
                expected=State.APPLYING,
                error=f"{target}: {exc.message}",
                backend_answers=answers,
                compiled=mitigation.compiled,
            )
            return mitigation
        done.append(target)
        Mitigation.objects.filter(pk=mitigation.pk).update(progress=int(100 * (index + 1) / len(mitigation.targets)))
    now = timezone.now()
    until = now + timedelta(seconds=mitigation.ttl_seconds)
    _transition(
        mitigation,
        State.ACTIVE,
        user=None,
        message=f"active on {', '.join(mitigation.targets)} until {until:%Y-%m-%d %H:%M} UTC",
        expected=State.APPLYING,
        backend_answers=answers,
        compiled=mitigation.compiled,
        applied_at=now,
        expires_at=until,
        progress=100,
        error="",
    )
    _attack_mitigation_changed(mitigation)
    return mitigation


def backend_undo(mitigation: Mitigation, target: str, handle: dict) -> dict[str, Any]:
    """Remove ``mitigation`` from one target, with the handle the ledger recorded when applying it."""
    spec = _spec(mitigation, target)
    spec.answer = handle or spec.answer
    return backend_for(target).remove(spec)


def mitigation_fail_reconciled(*, mitigation: Mitigation, message: str) -> bool:
    """Reconciliation's end of an apply whose worker died: applying → failed, with what was undone."""
    return _transition(
        mitigation, State.FAILED, user=None, message=message, expected=State.APPLYING, error=message[:2000]
    )


def _attack_mitigation_changed(mitigation: Mitigation) -> None:
    """The attack is mitigated while any of its mitigations is active; its summary and urgency follow."""
    if not mitigation.attack_id:
        return
    from alerts.models import Attack
    from alerts.services import attack_schedule_summary

    active = Mitigation.objects.filter(attack_id=mitigation.attack_id, state=State.ACTIVE).exists()
    Attack.objects.filter(pk=mitigation.attack_id).update(mitigated=active)
    attack_id = mitigation.attack_id
    transaction.on_commit(lambda: attack_schedule_summary(attack_id=attack_id))


# --------------------------------------------------------------------------- end of life


def _remove_everywhere(mitigation: Mitigation) -> tuple[dict, list[str]]:
    answers = dict(mitigation.backend_answers or {})
    errors = []
    for target in mitigation.targets:
        try:
            removal = backend_for(target).remove(_spec(mitigation, target))
        except BackendError as exc:
            errors.append(f"{target}: {exc.message}")
            removal = {"error": exc.message}
        answers[target] = {**answers.get(target, {}), "removal": removal}
    return answers, errors


def _end(mitigation: Mitigation, to_state: str, *, user: Any, message: str) -> Mitigation:
    mitigation.refresh_from_db()  # the caller's copy may be stale (a task finished meanwhile)
    expected = mitigation.state
    _require_state(
        mitigation.can_become(to_state),
        f"{mitigation.name} is {mitigation.get_state_display().lower()}: it cannot be {to_state.replace('_', ' ')}",
    )
    answers, errors = _remove_everywhere(mitigation)
    if errors:
        Mitigation.objects.filter(pk=mitigation.pk).update(backend_answers=answers, error="; ".join(errors))
        mitigation.backend_answers, mitigation.error = answers, "; ".join(errors)
        MitigationEvent.objects.create(
            mitigation=mitigation,
            actor_name=_actor_name(user),
            message="removal failed, will retry: " + "; ".join(errors),
        )
        raise MitigationError("could not remove it from " + "; ".join(errors))
    _transition(
        mitigation,
        to_state,
        user=user,
        message=message,
        expected=expected,
        backend_answers=answers,
        ended_at=timezone.now(),
        error="",
    )
    _attack_mitigation_changed(mitigation)
    return mitigation


def mitigation_rollback(*, mitigation: Mitigation, user: Any, reason: str = "") -> Mitigation:
    """Take it off every target now (a false positive, a customer complaint, a failed apply)."""
    _require_role(roles.can_act(user), "only engineers may roll back mitigations")
    return _end(mitigation, State.ROLLED_BACK, user=user, message="rolled back" + (f": {reason}" if reason else ""))


def mitigation_extend(*, mitigation: Mitigation, user: Any, seconds: int) -> Mitigation:
    """Keep an active mitigation longer: its expiry moves ``seconds`` later."""
    _require_role(roles.can_approve(user), "only a senior engineer or an admin may extend mitigations")
    _require(seconds > 0, "extend by a positive number of seconds")
    with transaction.atomic():
        locked = Mitigation.objects.select_for_update().get(pk=mitigation.pk)
        _require_state(locked.state == State.ACTIVE, "only an active mitigation can be extended")
        base = max(locked.expires_at or timezone.now(), timezone.now())
        new_expiry = base + timedelta(seconds=seconds)
        limit = (locked.applied_at or timezone.now()) + timedelta(seconds=settings.MITIGATION_MAX_TTL)
        _require(new_expiry <= limit, f"a mitigation lives at most {settings.MITIGATION_MAX_TTL // 86400} days")
        before = snapshot(locked, AUDITED)
        locked.expires_at = new_expiry
        locked.ttl_seconds = int((new_expiry - (locked.applied_at or timezone.now())).total_seconds())
        locked.save(update_fields=["expires_at", "ttl_seconds"])
        _record(
            locked,
            user=user,
            action="extend",
            before=before,
            message=f"extended by {seconds // 60} min, until {new_expiry:%Y-%m-%d %H:%M} UTC",
        )
    mitigation.refresh_from_db()
    return mitigation


def mitigations_expire_due(*, now: datetime | None = None) -> int:
    """The beat: take expired mitigations off their targets and mark them expired; drop expired list items."""
    expired = 0
    for mitigation in Mitigation.objects.due_to_expire(now).select_related("customer", "mitigation_list")[:200]:
        try:
            _end(mitigation, State.EXPIRED, user=None, message="expired")
            expired += 1
        except MitigationError as exc:
            log.warning("mitigation %s did not expire: %s", mitigation.pk, exc)
    list_items_purge_expired(now=now)
    mitigations_fail_stuck(now=now)
    return expired


def mitigations_fail_stuck(*, now: datetime | None = None, older_than: int = 900) -> int:
    """A worker that died mid-apply leaves a mitigation applying: take it off every target, mark it failed."""
    cutoff = (now or timezone.now()) - timedelta(seconds=older_than)
    stuck = Mitigation.objects.filter(state=State.APPLYING).exclude(
        events__to_state=State.APPLYING, events__at__gt=cutoff
    )
    failed = 0
    for mitigation in stuck[:50]:
        answers, errors = _remove_everywhere(mitigation)
        message = "the apply task never finished (worker lost?); removed from every target" + (
            f" except: {'; '.join(errors)}" if errors else ""
        )
        failed += _transition(
            mitigation,
            State.FAILED,
            user=None,
            message=message,
            expected=State.APPLYING,
            backend_answers=answers,
            error=message,
        )
    return failed


def mitigations_check_drift() -> int:
    """The beat: what each backend reads back vs what should be active. Returns mitigations in drift."""
    now = timezone.now()
    active = list(Mitigation.objects.active())
    transient = set(Mitigation.objects.filter(state__in=[State.APPLYING, State.APPROVED]).values_list("id", flat=True))
    groups: dict[tuple[str, str], tuple[Backend, dict, list[Mitigation]]] = {}
    for mitigation in active:
        for target in mitigation.targets:
            backend = backend_for(target)
            if not backend.production:
                continue
            options = _options(mitigation)
            key = (target, backend.location(options))
            groups.setdefault(key, (backend, options, []))[2].append(mitigation)
    drifting: set[int] = set()
    updates: dict[int, Mitigation] = {}
    for (target, location), (backend, options, members) in groups.items():
        specs = [_spec(m, target) for m in members]
        state, _ = BackendState.objects.get_or_create(key=location, defaults={"checked_at": now})
        try:
            verification = backend.verify(specs, options)
        except BackendError as exc:
            state.error, state.checked_at = exc.message, now
            state.save()
            continue
        if verification is None:
            continue
        strays = [n for n in verification.unexpected if not n.startswith("sw-") or int(n[3:]) not in transient]
        state.installed, state.unexpected, state.error, state.checked_at = verification.installed, strays, "", now
        state.save()
        for m in members:
            found = verification.installed.get(m.name)
            m = updates.setdefault(m.pk, m)
            m.drift = dict(m.drift or {})
            if found is None:
                m.drift[target] = f"not installed at {location}"
                drifting.add(m.pk)
            else:
                m.drift.pop(target, None)
                m.hits = {**(m.hits or {}), target: {**found, "at": now.isoformat()}}
    for m in updates.values():
        newly = m.drift and not Mitigation.objects.filter(pk=m.pk).exclude(drift={}).exists()
        Mitigation.objects.filter(pk=m.pk).update(drift=m.drift, hits=m.hits, drift_checked_at=now)
        if newly:
            MitigationEvent.objects.create(
                mitigation=m, actor_name=_actor_name(None), message="drift: " + "; ".join(m.drift.values())
            )
            audit_record(action="mitigation.drift", obj=m, after={"drift": m.drift})
    return len(drifting)


# --------------------------------------------------------------------------- lists


def list_create(
    *, name: str, purpose: str, user: Any, customer: Customer | None = None, description: str = "", source: str = ""
) -> MitigationList:
    _require_role(roles.can_act(user), "only engineers may create lists")
    _require(bool(LIST_NAME.fullmatch(name)), "list names are 1-50 lowercase letters, digits or underscores")
    _require(not MitigationList.objects.filter(name=name).exists(), f"a list named {name} exists")
    mlist = MitigationList.objects.create(
        name=name, purpose=purpose, customer=customer, description=description, source=source
    )
    audit_record(action="mitigation_list.create", obj=mlist, after=snapshot(mlist), actor=user, customer=customer)
    return mlist


def list_import(
    *,
    mitigation_list: MitigationList,
    text: str,
    user: Any,
    fmt: str = "auto",
    ttl_seconds: int | None = None,
    comment: str = "",
) -> dict[str, Any]:
    """Add the addresses of a plain, Spamhaus DROP or FireHOL file; existing items get the new expiry.

    Addresses a block list must never hold (global allowlist) are skipped and reported.
    """
    _require_role(roles.can_act(user), "only engineers may change lists")
    _require(
        not ttl_seconds or 0 < ttl_seconds <= ListItem.MAX_TTL_SECONDS,
        f"items may expire after 1 to {ListItem.MAX_TTL_SECONDS} s",
    )
    parsed = parse_list(text, fmt)
    expires = timezone.now() + timedelta(seconds=ttl_seconds) if ttl_seconds else None
    allow = (
        [n for n, _ in protected_addresses(mitigation_list.customer)]
        if mitigation_list.customer_id
        else [e.network() for e in GlobalAllowlistEntry.objects.all()]
    )
    refused = []
    rows = []
    for cidr, item_comment in parsed.items:
        net = ipaddress.ip_network(cidr, strict=False)
        if mitigation_list.purpose != MitigationList.Purpose.ALLOW and any(
            net.version == a.version and net.overlaps(a) for a in allow
        ):
            refused.append(f"{cidr} overlaps a protected network")
            continue
        rows.append(
            ListItem(
                mitigation_list=mitigation_list, value=cidr, expires_at=expires, comment=(item_comment or comment)[:255]
            )
        )
    with transaction.atomic():
        existing = set(
            ListItem.objects.filter(mitigation_list=mitigation_list, value__in=[r.value for r in rows]).values_list(
                "value", flat=True
            )
        )
        ListItem.objects.bulk_create([r for r in rows if r.value not in existing], batch_size=2000)
        if existing:
            ListItem.objects.filter(mitigation_list=mitigation_list, value__in=existing).update(expires_at=expires)
        MitigationList.objects.filter(pk=mitigation_list.pk).update(updated_at=timezone.now())
        result = {
            "format": parsed.format,
            "added": len(rows) - len(existing),
            "updated": len(existing),
            "refused": refused,
            "errors": parsed.errors[:100],
        }
        audit_record(
            action="mitigation_list.import",
            obj=mitigation_list,
            after=result,
            actor=user,
            customer=mitigation_list.customer_id,
        )
    return result


def list_item_add(
    *, mitigation_list: MitigationList, value: str, user: Any, ttl_seconds: int | None = None, comment: str = ""
) -> ListItem:
    try:
        normalise(value)
    except ValueError as exc:
        raise MitigationError(f"{value!r} is not an address or CIDR") from exc
    result = list_import(
        mitigation_list=mitigation_list, text=value, user=user, fmt="plain", ttl_seconds=ttl_seconds, comment=comment
    )
    if result["refused"]:
        raise MitigationError(result["refused"][0])
    return ListItem.objects.get(mitigation_list=mitigation_list, value=normalise(value))


def list_item_remove(*, item: ListItem, user: Any) -> None:
    _require_role(roles.can_act(user), "only engineers may change lists")
    audit_record(
        action="mitigation_list.item_remove",
        obj=item.mitigation_list,
        before={"value": item.value},
        actor=user,
        customer=item.mitigation_list.customer_id,
    )
    item.delete()


def list_items_purge_expired(*, now: datetime | None = None) -> int:
    deleted, _ = ListItem.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted

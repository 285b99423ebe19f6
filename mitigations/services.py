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
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console import errors, roles
from console.audit import audit_record, snapshot
from console.context import current_system_actor
from console.lazy import lazy_module
from console.models import Asset, Customer
from mitigations import ledger
from mitigations.backends import BACKENDS, Backend, BackendError, Spec, get_backend
from mitigations.listformats import normalise, parse_list
from mitigations.models import (
    Approval,
    BackendState,
    EnforcementStep,
    EnforcementTarget,
    GlobalAllowlistEntry,
    ListItem,
    Mitigation,
    MitigationEvent,
    MitigationList,
    MitigationTarget,
    target_keys,
    target_kind,
)
from mitigations.rules import CompileError, Rule, RuleError, evaluate, parse
from mitigations.rules.ast import IP, Compare, FieldRef, IPRange, ListRef, Logical, Not, ip_text, walk
from mitigations.rules.baseline import missing_traffic

log = logging.getLogger(__name__)
# Imported on first use (a simulation or a collateral check), not by every process that loads
# the URLconf: see console/lazy.py.
pa = lazy_module("pyarrow")
# The gate's logic over the rule evaluates sample packets with the evaluator (numpy, pyarrow).
rule_coverage = lazy_module("mitigations.rules.coverage")
# The compilers too: only compiling or applying a rule needs them, not every process at start-up.
compiling = lazy_module("mitigations.compiling")

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


def backend_for(name: str, target: EnforcementTarget | None = None) -> Backend:
    """The backend of a configured target; ``export`` needs none. Nothing else is reachable.

    There is no default location: a packet-filter backend without a target's namespace or
    command refuses to run, so nothing ever writes to the console's own host by accident.
    """
    if name == "export":
        return get_backend(name)
    if target is None or target.kind != name:
        raise BackendError(f"no configured {name} enforcement target: nothing is applied without one")
    if problems := target.problems():
        raise BackendError("; ".join(problems))
    if name in ("nftables", "iptables"):
        return get_backend(name, namespace=target.namespace, command=target.command)
    if name == "cloudflare":
        token = os.environ.get(target.credentials_ref, "") if target.credentials_ref else ""
        return get_backend(
            name,
            base_url=settings.CLOUDFLARE_API_BASE,
            token=token or settings.CLOUDFLARE_API_TOKEN,
            max_retries=settings.CLOUDFLARE_MAX_RETRIES,
            backoff=settings.CLOUDFLARE_BACKOFF,
            plan=settings.CLOUDFLARE_PLAN,
        )
    raise BackendError(f"unknown backend {name!r}")


def _backend(mitigation: Mitigation, key: str) -> Backend:
    """The backend behind one of the mitigation's target keys (``nftables`` or ``nftables:edge-a``)."""
    return backend_for(target_kind(key), mitigation.target_for(key))


# Options that say where a backend acts: only a configured target sets them, never a mitigation.
LOCATION_OPTIONS = ("namespace", "command", "account_id", "zone_id")


def _options(mitigation: Mitigation, key: str | None = None) -> dict:
    """The backend options for one target key (None: the first target): the target's location wins."""
    options = {k: v for k, v in (mitigation.options or {}).items() if k not in LOCATION_OPTIONS}
    target = mitigation.target_for(key) if key is not None else mitigation.enforcement_target
    if target is not None:
        options.update(target.options())
    if settings.CLOUDFLARE_PLAN and "cloudflare" in (mitigation.targets or []):
        options.setdefault("cloudflare_plan", settings.CLOUDFLARE_PLAN)  # plan rules checked when compiling
    return options


def _spec(mitigation: Mitigation, target: str) -> Spec:
    return Spec(
        name=mitigation.name,
        compiled=(mitigation.compiled or {}).get(target, {}),
        options=_options(mitigation, target),
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
    """The rule a mitigation enforces, whatever its kind (an IP access value and a list become rules too).

    An address or a list names sources only; on anything but the customer's own Cloudflare
    zone it is limited to traffic toward the customer's networks, as the compilers do.
    """
    if mitigation.kind not in (Mitigation.Kind.IP_ACCESS, Mitigation.Kind.IP_LIST):
        return parse(mitigation.expression)
    if mitigation.kind == Mitigation.Kind.IP_ACCESS:
        text = compiling.expression_for_value(mitigation.value)
    else:
        text = compiling.expression_for_list(mitigation.mitigation_list.name)
    clause = "" if _zone_scoped(mitigation) else network_scope_clause(mitigation.customer, mitigation.attack)
    return parse(f"{clause} and ({text})" if clause else text)


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
                target_kind(target),
                name=mitigation.name,
                kind=mitigation.kind,
                action=mitigation.action,
                expression=mitigation.expression,
                value=mitigation.value,
                rate=mitigation.rate,
                items=_list_items(mitigation.mitigation_list),
                list_name=mitigation.mitigation_list.name if mitigation.mitigation_list_id else "",
                lists=lists,
                options=_options(mitigation, target),
                description=mitigation.title or mitigation.summary,
                scope=[str(n) for n in customer_networks(mitigation.customer, mitigation.attack)],
            )
        except (CompileError, ValueError) as exc:
            errors[target] = str(exc)
    mitigation.compiled, mitigation.compile_errors = compiled, errors


# --------------------------------------------------------------------------- scope: the customer's assets only

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Kinds a Cloudflare zone scopes by itself (a zone's rules only ever see the zone's requests).
ZONE_KINDS = (Mitigation.Kind.IP_ACCESS, Mitigation.Kind.IP_LIST, Mitigation.Kind.WAF_RULE, Mitigation.Kind.RATE_LIMIT)
# Addresses no customer holds, to tell "limited to the customer" from "matches anything".
OUTSIDERS = ("240.0.0.1", "3fff::1")


def _attacked_address(attack: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    target = (getattr(attack, "target", "") or "").strip()
    for candidate in (target, target.rsplit(":", 1)[0], target.strip("[]")):
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(candidate.strip("[]"))
    return None


def customer_networks(customer: Customer, attack: Any = None) -> list[Network]:
    """The destinations a network rule of this customer may match: its prefixes, and the attacked address.

    The attacked address counts only when no other customer and no provider range holds it.
    """
    nets = [a.network() for a in Asset.objects.filter(customer=customer, kind=Asset.Kind.PREFIX)]
    address = _attacked_address(attack) if attack is not None else None
    if address is not None and not any(address in n for n in nets):
        others = [a.network() for a in Asset.objects.filter(kind=Asset.Kind.PREFIX).exclude(customer=customer)]
        provider = [ipaddress.ip_network(v, strict=False) for v in settings.PROVIDER_NETWORKS]
        if not any(address.version == n.version and address in n for n in others + provider):
            nets.append(ipaddress.ip_network(address))
    return nets


def customer_hosts(customer: Customer) -> list[str]:
    out = []
    for asset in Asset.objects.filter(customer=customer, kind__in=[Asset.Kind.ZONE, Asset.Kind.SPECTRUM]):
        out.append(asset.value.rsplit(":", 1)[0] if asset.kind == Asset.Kind.SPECTRUM else asset.value)
    return list(dict.fromkeys(out))


def network_scope_clause(customer: Customer, attack: Any = None) -> str:
    nets = customer_networks(customer, attack)
    return f"ip.dst in {{{' '.join(str(n) for n in nets)}}}" if nets else ""


def host_scope_clause(customer: Customer) -> str:
    hosts = customer_hosts(customer)
    return "http.host in {" + " ".join(f'"{h}"' for h in hosts) + "}" if hosts else ""


def scoped_expression(customer: Customer, expression: str, *, attack: Any = None) -> str:
    """A suggested rule limited to the customer: its destinations (or hosts), minus protected sources.

    What the propose form prefills from a comparison's suggestion, so the engineer sees the
    scope and the exclusions the rule will carry.
    """
    rule = parse(expression)
    if rule.layer == "L7":
        clause = "" if "http.host" in rule.fields else host_scope_clause(customer)
        return f"{clause} and ({rule.to_text()})" if clause else rule.to_text()
    parts = ["" if "ip.dst" in rule.fields else network_scope_clause(customer, attack)]
    # A rule that names its sources is checked against the protected ones exactly; one that
    # names none must exclude them (or it drops the resolvers' answers, the origin pulls...).
    nets = sorted({n for n, _ in protected_addresses(customer)}, key=lambda n: (n.version, n))
    if nets and not _names_sources(rule):
        shown = [str(n.network_address) if n.num_addresses == 1 else str(n) for n in nets]
        parts.append(f"not ip.src in {{{' '.join(shown)}}}")
    parts.append(f"({rule.to_text()})")
    return " and ".join(p for p in parts if p)


def _zone_scoped(mitigation: Mitigation) -> bool:
    """Every target is a zone of the customer's: the zone scopes the rule (a packet filter beside it does not)."""
    targets = mitigation.configured_targets()
    return bool(targets) and all(
        target.kind == target.Kind.CLOUDFLARE
        and target.zone_id
        and target.customer_id == mitigation.customer_id
        and mitigation.kind in ZONE_KINDS
        for target in targets
    )


def _rule_lists_for_check(mitigation: Mitigation, rule: Rule) -> dict[str, list[str]]:
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        return {mitigation.mitigation_list.name: [v for v, _, _ in _list_items(mitigation.mitigation_list)]}
    return _rule_lists(mitigation, rule)


def _listing(found: list[tuple[str, str]], limit: int = 8, per_group: int = 3) -> str:
    """``a, b (why); c (other why); and N more``: the addresses grouped by why they matter."""
    grouped: dict[str, list[str]] = {}
    for address, why in found:
        grouped.setdefault(why, []).append(address)
    parts = []
    for why, addresses in list(grouped.items())[:limit]:
        if all(_is_network(a) for a in addresses):
            addresses.sort(key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))
        more = f" +{len(addresses) - per_group}" if len(addresses) > per_group else ""
        parts.append(f"{', '.join(addresses[:per_group])}{more} ({why})")
    rest = len(grouped) - limit
    return "; ".join(parts) + (f"; and {rest} more" if rest > 0 else "")


def scope_problems(mitigation: Mitigation) -> list[str]:
    """Why the rule could match traffic that is not this customer's: the addresses or hosts it could hit.

    Network rules are evaluated (three-valued: every field but ``ip.dst`` unknown) over
    addresses of other customers' prefixes, the provider's ranges and addresses just outside
    the customer's own; L7 rules over other customers' hosts. A Cloudflare zone target of
    the customer scopes zone rules by itself.
    """
    customer = mitigation.customer
    for target in mitigation.configured_targets():
        if target.customer_id not in (None, customer.pk):
            return [f"the enforcement target {target.name} belongs to another customer"]
        cloudflare_unbound = target.kind == target.Kind.CLOUDFLARE and not target.customer_id
        if cloudflare_unbound and mitigation.kind in ZONE_KINDS:
            return [f"the Cloudflare target {target.name} is bound to no customer: bind its zone to {customer.name}"]
    if _zone_scoped(mitigation):
        return []
    rule = mitigation_rule(mitigation)
    lists = _rule_lists_for_check(mitigation, rule)
    if rule.layer == "L7":
        hosts = customer_hosts(customer)
        if not hosts:
            return [f"{customer.name} has no zone or hostname: an L7 rule cannot be limited to its traffic"]
        points = [
            (a.value.rsplit(":", 1)[0], f"{a.customer.name}'s {a.get_kind_display().lower()}")
            for a in Asset.objects.filter(kind__in=[Asset.Kind.ZONE, Asset.Kind.SPECTRUM])
            .exclude(customer=customer)
            .select_related("customer")[:500]
        ]
        points.append(("unknown-host.invalid", f"not a host of {customer.name}"))
        table = pa.table({"http.host": pa.array([p[0] for p in points], pa.string())})
        found = [p for hit, p in zip(_possibly(rule.ast, table, lists), points, strict=True) if hit]
        if found:
            return [
                f"it could match requests to hosts that are not {customer.name}'s: {_listing(found)}; "
                f"limit it with {host_scope_clause(customer)}"
            ]
        return []
    own = customer_networks(customer, mitigation.attack)
    if not own:
        return [f"{customer.name} has no IP prefix and no attacked address: a network rule cannot be limited to it"]
    provider = [ipaddress.ip_network(v, strict=False) for v in settings.PROVIDER_NETWORKS]
    problems = [
        f"{net} overlaps the provider's own range {p}"
        for net in own
        for p in provider
        if net.version == p.version and net.overlaps(p)
    ]
    points: list[tuple[str, str]] = []
    for asset in (
        Asset.objects.filter(kind=Asset.Kind.PREFIX).exclude(customer=customer).select_related("customer")[:500]
    ):
        points += [(a, f"{asset.customer.name}'s prefix {asset.value}") for a in _sample_points(asset.network())]
    for p in provider:
        points += [(a, f"the provider's own range {p}") for a in _sample_points(p)]
    for net in own:
        for address in (net.network_address - 1, net.broadcast_address + 1):
            with contextlib.suppress(ValueError):
                points.append((str(address), f"outside {customer.name}'s {net}"))
    points += [(a, f"not an address of {customer.name}") for a in OUTSIDERS]
    points = [(a, why) for a, why in dict.fromkeys(points) if not any(ipaddress.ip_address(a) in n for n in own)]
    table = pa.table({"ip.dst": pa.array([a for a, _ in points], pa.string())})
    found = [p for hit, p in zip(_possibly(rule.ast, table, lists), points, strict=True) if hit]
    if found:
        problems.append(
            f"it could match traffic to addresses that are not {customer.name}'s: {_listing(found)}; "
            f"limit it with {network_scope_clause(customer, mitigation.attack)}"
        )
    return problems


def _require_scoped(mitigation: Mitigation) -> None:
    problems = scope_problems(mitigation)
    _require(not problems, "out of the customer's scope: " + "; ".join(problems))


# --------------------------------------------------------------------------- create, simulate, propose


def mitigation_create(
    *,
    customer: Customer,
    kind: str,
    user: Any,
    target: EnforcementTarget | None = None,
    also_targets: Sequence[EnforcementTarget] = (),
    targets: Sequence[str] = (),
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
    # Targets are configured objects: a bare backend name ("nftables") no longer says where it acts.
    unknown = [t for t in targets if t not in BACKENDS]
    _require(not unknown, f"unknown target(s): {', '.join(unknown)}")
    implicit = [t for t in targets if t != "export" and (target is None or t != target.kind)]
    _require(
        not implicit,
        f"{', '.join(implicit)}: choose a configured enforcement target (none means an export only)",
    )
    configured = [target, *also_targets] if target is not None else list(also_targets)
    _require(len({t.pk for t in configured}) == len(configured), "each enforcement target once")
    for each in configured:
        _require(not each.problems(), "; ".join(each.problems()))
        _require(
            each.customer_id in (None, customer.pk),
            f"the enforcement target {each.name} belongs to another customer",
        )
        _require(each.kind != EnforcementTarget.Kind.EXPORT or len(configured) == 1, "an export is a target alone")
    if configured:
        first, further = configured[0], sorted(configured[1:], key=lambda t: t.name)
        configured = [first, *further]
        target = first
    targets = target_keys(configured) if configured else ["export"]
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
    # Scope is not optional: a rule that could match another customer's traffic is never written.
    unsaved = Mitigation(
        customer=customer,
        attack=attack,
        kind=kind,
        expression=expression,
        value=value.strip(),
        mitigation_list=mitigation_list,
        action=action,
        enforcement_target=target,
    )
    unsaved._configured_targets = configured
    _require_scoped(unsaved)
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
            enforcement_target=target,
            targets=targets,
            options={k: v for k, v in (options or {}).items() if k not in LOCATION_OPTIONS},
            rate=dict(rate or {}),
            ttl_seconds=ttl,
            author=user,
            ticket=ticket,
        )
        for further in configured[1:]:
            MitigationTarget.objects.create(mitigation=mitigation, target=further)
        mitigation._configured_targets = configured
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
    from_samples: bool = False,
) -> dict[str, Any]:
    """Run ``rule`` over attack and baseline traffic (pyarrow tables with rule-field columns).

    ``from_samples``: the tables are parsed traffic samples, whose schema is what the sample
    can answer; a field it lacks makes that side "unknown". Tables given directly (the API's
    records) must carry every field the rule reads, and evaluating them refuses them if not.

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
        unknown = ""
        absent = sorted(f for f in rule.fields if f not in table.column_names) if from_samples else []
        if absent:
            # The sample cannot answer these fields (a cookie rule on a capture, say): unknown, not 0.
            what = "this capture" if "frame.number" in table.column_names else "this sample"
            why = [f"{what} has no {', '.join(absent)}"]
            if label == "baseline":
                why = missing_traffic(rule, table) or why  # the gate's own words for it
            out[label] = {
                "rows": table.num_rows,
                "matched": None,
                "share": None,
                "unknown": "unknown — " + "; ".join(why),
            }
            if label == "baseline":
                out[label]["missing"] = why
            else:
                out["top_matched"] = {}
            continue
        if "frame.number" in table.column_names:
            # A capture answers an L7 rule on its requests / ClientHellos only, or not at all.
            from traffic.parsers.l7 import capture_rows

            l7_rows, unknown = capture_rows(table, rule.fields)
            if l7_rows is not None:
                table = table.filter(pa.array(l7_rows))
        matched = evaluate(rule, table, lists)
        rows, hits = table.num_rows, int(matched.sum())
        out[label] = {"rows": rows, "matched": hits, "share": (hits / rows) if rows else 0.0}
        if unknown:
            out[label].update(matched=None, share=None, unknown=f"unknown — {unknown}")
        if label == "baseline":
            out[label]["missing"] = missing_traffic(rule, table) + ([unknown] if unknown else [])
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
    the newest ready baseline sample on that attack, else the customer's newest, of the
    same record type. L3/L4 rules read packet captures. L7 rules read request logs, and
    when the attack has none, its captures: their HTTP requests and TLS ClientHellos
    answer the rule (``traffic.parsers.l7.capture_rows``), or the simulation says why
    they cannot, never "0 matched".
    """
    from traffic.models import TrafficSample
    from traffic.services import sample_table

    rule = mitigation_rule(mitigation)
    ready = TrafficSample.objects.filter(customer=mitigation.customer, status=TrafficSample.Status.READY)
    captures = ready.filter(kind=TrafficSample.Kind.PCAP)
    groups = [ready.exclude(kind=TrafficSample.Kind.PCAP), captures] if rule.layer == "L7" else [captures]
    picked: list[tuple[Any, Any]] = []
    for samples in groups:
        attack_sample = baseline_sample = None
        if mitigation.attack_id:
            attack_sample = samples.filter(attack_id=mitigation.attack_id, label=TrafficSample.Label.ATTACK).first()
            baseline_sample = samples.filter(attack_id=mitigation.attack_id, label=TrafficSample.Label.BASELINE).first()
        baseline_sample = baseline_sample or samples.filter(label=TrafficSample.Label.BASELINE).first()
        picked.append((attack_sample, baseline_sample))
    # The first record type with attack traffic; without any, the first with a baseline.
    attack_sample, baseline_sample = next(
        (p for p in picked if p[0] is not None), next((p for p in picked if p[1] is not None), (None, None))
    )
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
    from_samples = attack_table is None and baseline_table is None
    if from_samples:
        attack_table, baseline_table = traffic_tables(mitigation)
    _require(
        attack_table is not None or baseline_table is not None,
        "no traffic to simulate on: attach attack and baseline samples to the attack",
    )
    rule = mitigation_rule(mitigation)
    lists = _rule_lists(mitigation, rule)
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        lists = {mitigation.mitigation_list.name: [v for v, _, _ in _list_items(mitigation.mitigation_list)]}
    result = simulate_tables(rule, attack_table, baseline_table, lists, from_samples=from_samples)
    mitigation.simulation = result
    mitigation.simulated_at = timezone.now()
    fields = ["simulation", "simulated_at"]
    if mitigation.state in (State.DRAFT, State.PROPOSED):
        mitigation.blast_radius, mitigation.approval_reasons = blast_radius(mitigation)
        mitigation.required_approvals = APPROVALS_BY_LEVEL[mitigation.blast_radius]
        fields += ["required_approvals", "approval_reasons", "blast_radius"]
    mitigation.save(update_fields=fields)
    attack, baseline = result.get("attack"), result.get("baseline")
    _record(
        mitigation,
        user=user,
        action="simulate",
        message="simulated: "
        + (_share_words(attack, "attack", ".1%") if attack else "no attack traffic")
        + (", " + _share_words(baseline, "baseline", ".2%") if baseline else ", no baseline"),
    )
    return mitigation


def _share_words(part: dict, name: str, fmt: str) -> str:
    if part.get("share") is None:
        return f"{name}: {part.get('unknown') or 'unknown'}"
    return f"{part['share']:{fmt}} of {name} matched"


def collateral(mitigation: Mitigation) -> float | None:
    """The share of baseline traffic the rule hits; None when unknown (no baseline, or none of its traffic)."""
    baseline = (mitigation.simulation or {}).get("baseline")
    if not baseline or baseline.get("missing"):
        return None
    return float(baseline["share"])


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
        # A packet toward the customer that carries none of the values the rule names.
        own = customer_networks(mitigation.customer, mitigation.attack)
        victim = str(own[0].network_address) if own else None
        hosts = customer_hosts(mitigation.customer)
        empty = pa.table(
            {
                "ip.src": pa.array([None], pa.string()),
                "ip.dst": pa.array([victim], pa.string()),
                "http.host": pa.array([hosts[0] if hosts else None], pa.string()),
            }
        )
        if bool(evaluate(rule, empty, _rule_lists(mitigation, rule))[0]):
            reasons.append("it matches traffic that has none of the values it names (a negation)")
    return reasons


def _source_networks(rule: Rule, name: str = "ip.src") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The addresses and networks the rule compares ``ip.src`` with (not ``ip.dst``: that is the victim).

    Comparisons under a ``not`` are exclusions (``not ip.src in {allowlist}``), not targets.
    ``name`` = "ip.dst" gives the destinations it names instead.
    """
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []

    def visit(node: Any, negated: bool) -> None:
        if isinstance(node, Not):
            visit(node.operand, not negated)
        elif isinstance(node, Logical):
            for item in node.items:
                visit(item, negated)
        elif (
            isinstance(node, Compare)
            and isinstance(node.left, FieldRef)
            and node.left.name == name
            and not negated
            and node.op != "ne"
        ):
            for lit in walk(node.right):
                if isinstance(lit, IP):
                    out.append(lit.value)
                elif isinstance(lit, IPRange):
                    out.extend(lit.networks())

    visit(rule.ast, False)
    return out


def _names_sources(rule: Rule) -> bool:
    """Does the rule say which sources it hits (addresses, a list, an ASN, a country), outside any ``not``?

    Such a rule is checked against protected sources exactly (overlaps, above); one that
    names none hits every source its other clauses match, protected ones included.
    """
    found = False

    def visit(node: Any, negated: bool) -> None:
        nonlocal found
        if isinstance(node, Not):
            visit(node.operand, not negated)
        elif isinstance(node, Logical):
            for item in node.items:
                visit(item, negated)
        elif (
            isinstance(node, Compare)
            and isinstance(node.left, FieldRef)
            and not negated
            and node.op != "ne"
            and node.left.name in ("ip.src", "ip.src.asnum", "ip.src.country", "ip.src.continent")
        ):
            found = True

    visit(rule.ast, False)
    return found


def _is_network(value: Any) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return True


class BlastRadius:
    LOW, MEDIUM, HIGH, REFUSED = "low", "medium", "high", "refused"


def blast_radius(mitigation: Mitigation) -> tuple[str, list[str]]:
    """The gate's level and why: low, medium, high or refused (thresholds in ``MITIGATION_BLAST_RADIUS``).

    Unknown collateral (never simulated, no baseline, or a baseline without the traffic
    the rule reads) is high: nobody can say the rule is harmless. A broad rule (a
    country, an ASN, a /16, a negation) is at least medium.
    """
    levels = settings.MITIGATION_BLAST_RADIUS
    everything = matches_everything(mitigation)
    if everything is not None and everything[0] == BlastRadius.REFUSED:
        return everything[0], [everything[1]]
    simulation = mitigation.simulation or {}
    baseline = simulation.get("baseline")
    reasons = [everything[1]] if everything is not None else []
    if not mitigation.simulation or simulation.get("unavailable"):
        level = BlastRadius.HIGH
        reasons.append("collateral unknown: not simulated" + (f" ({simulation['unavailable']})" if simulation else ""))
    elif not baseline:
        level = BlastRadius.HIGH
        reasons.append("collateral unknown: no baseline traffic of this customer")
    elif baseline.get("missing"):
        level = BlastRadius.HIGH
        reasons.append("collateral unknown: " + "; ".join(baseline["missing"]))
    else:
        share = float(baseline["share"])
        if share > levels["ceiling"]:
            return BlastRadius.REFUSED, [
                f"it matches {share:.2%} of baseline traffic, above the ceiling of {levels['ceiling']:.2%}"
            ]
        if share > levels["medium"]:
            level = BlastRadius.HIGH
        elif share > levels["low"]:
            level = BlastRadius.MEDIUM
        else:
            level = BlastRadius.LOW
        reasons.append(
            f"it matches {share:.2%} of baseline traffic ({level}: low ≤ {levels['low']:.2%}, "
            f"medium ≤ {levels['medium']:.2%}, high ≤ {levels['ceiling']:.2%})"
        )
    broad = broad_reasons(mitigation)
    if broad and level == BlastRadius.LOW:
        level = BlastRadius.MEDIUM
    if everything is not None:
        level = BlastRadius.HIGH
    return level, reasons + broad


def matches_everything(mitigation: Mitigation) -> tuple[str, str] | None:
    """Refused or high, and why, when the rule matches all traffic rather than the attack; None otherwise.

    Decided by its logic first (``ip.ttl ge 0`` matches every packet whatever a baseline
    holds, and a baseline without TTLs would only say "unknown"), then by the simulation: a
    rule that matches ``MITIGATION_BLAST_RADIUS["all"]`` of the customer's baseline matches
    practically all of it. Every packet toward the customer is refused; every packet of one
    protocol (``tcp.dstport le 65535``: all of its TCP) needs an admin.
    """
    share_all = settings.MITIGATION_BLAST_RADIUS.get("all", 0.99)
    rule = mitigation_rule(mitigation)
    customer = mitigation.customer
    victims = [] if _zone_scoped(mitigation) else customer_networks(customer, mitigation.attack)
    where = f"to {customer.name}" if victims else "of the zone" if _zone_scoped(mitigation) else ""
    found = rule_coverage.coverage(
        rule, victims=victims, lists=_rule_lists_for_check(mitigation, rule), threshold=share_all
    )
    if found is not None and found.all_traffic:
        return BlastRadius.REFUSED, found.describe(where) + " (a mitigation must single out the attack)"
    share = collateral(mitigation)
    if share is not None and share >= share_all:
        return BlastRadius.REFUSED, (
            f"it matches {share:.2%} of {customer.name}'s baseline traffic: practically all of it "
            "(a mitigation must single out the attack)"
        )
    if found is not None and found.every:
        return BlastRadius.HIGH, found.describe(where)
    return None


APPROVALS_BY_LEVEL = {BlastRadius.LOW: 1, BlastRadius.MEDIUM: 2, BlastRadius.HIGH: 1, BlastRadius.REFUSED: 0}


def approvals_needed(mitigation: Mitigation) -> tuple[int, list[str]]:
    """How many approvals the blast radius asks for (high: one, an admin's), and why."""
    level, reasons = blast_radius(mitigation)
    return APPROVALS_BY_LEVEL[level], reasons


def approvers_wanted(level: str) -> str:
    return {
        BlastRadius.LOW: "one senior engineer",
        BlastRadius.MEDIUM: "two senior engineers",
        BlastRadius.HIGH: "an admin (incident lead)",
        BlastRadius.REFUSED: "nobody: refused",
    }.get(level, "unknown")


def protected_addresses(customer: Customer) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    """Sources no mitigation of this customer may block: its own addresses, its allow lists, the global allowlist."""
    out = []
    for asset in Asset.objects.filter(customer=customer, kind=Asset.Kind.PREFIX):
        out.append((ipaddress.ip_network(asset.value, strict=False), f"the customer's own prefix {asset.value}"))
    now = timezone.now()
    allow_items = ListItem.objects.filter(
        Q(mitigation_list__customer=customer) | Q(mitigation_list__customer__isnull=True),
        mitigation_list__purpose=MitigationList.Purpose.ALLOW,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    for item in allow_items.select_related("mitigation_list")[:2000]:
        out.append((item.network(), f"allow list ${item.mitigation_list.name}"))
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
    if rule.layer != "L7" and protected and not _names_sources(rule):
        # A packet rule that does not exclude a protected source blocks it whenever its other
        # clauses match (`tcp.dstport eq 443` drops the origin pulls to 443 too).
        points = list(dict.fromkeys((a, why) for net, why in protected for a in _sample_points(net)))
        table = pa.table({"ip.src": pa.array([a for a, _ in points], pa.string())})
        found = [p for hit, p in zip(_possibly(rule.ast, table, lists), points, strict=True) if hit]
        if found:
            problems.append(
                f"it could {mitigation.action} traffic from protected sources: {_listing(found)}; "
                "exclude them (not ip.src in {...}) or name the attacking sources"
            )
    problems += provider_problems(mitigation)
    return list(dict.fromkeys(problems))


# Addresses no packet from the Internet carries: a rule that names them is a mistake (or hides
# one), whatever it does.
UNROUTABLE = (
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("::ffff:127.0.0.0/104", "loopback (IPv4-mapped)"),
    ("0.0.0.0/8", "the unspecified network"),
    ("::/128", "the unspecified address"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
)


def unroutable_problems(mitigation: Mitigation) -> list[str]:
    """Why the rule names a source or destination no packet from the network carries: loopback, unspecified,
    link-local. No admin override covers these (a log-only rule is let through)."""
    if mitigation.action == Mitigation.Action.LOG:
        return []
    special = [(ipaddress.ip_network(net), why) for net, why in UNROUTABLE]
    return [
        f"it matches {shown} as the {role}: that is {why} ({bad}), which no packet from the network carries; "
        "no admin override covers this"
        for shown, role, bad, why in _named_special(mitigation, special)
    ]


def provider_problems(mitigation: Mitigation) -> list[str]:
    """Why the rule names the provider's own ranges (``PROVIDER_NETWORKS``) as a source or destination.

    A safety problem an admin may override with a reason (a compromised edge node is blocked so).
    """
    special = [(ipaddress.ip_network(v, strict=False), "") for v in settings.PROVIDER_NETWORKS]
    return [
        f"it matches {shown} as the {role}: that is the provider's own range {bad}"
        for shown, role, bad, _ in _named_special(mitigation, special)
    ]


def _named_special(mitigation: Mitigation, special: list[tuple[Network, str]]) -> list[tuple[str, str, Network, str]]:
    """(what the rule names, source/destination, the special network, why) for each special network it names.

    A named network that overlaps one counts when some packet with an address there could
    match the rule (three-valued: the rule's other clauses unknown).
    """
    rule = mitigation_rule(mitigation)
    lists = _rule_lists_for_check(mitigation, rule)
    out = []
    for name, role in (("ip.src", "source"), ("ip.dst", "destination")):
        named = _source_networks(rule, name)
        for node in walk(rule.ast):
            if isinstance(node, Compare) and isinstance(node.left, FieldRef) and node.left.name == name:
                for ref in walk(node.right):
                    if isinstance(ref, ListRef):
                        values = lists.get(ref.name, ())
                        named += [ipaddress.ip_network(v, strict=False) for v in values if _is_network(v)]
        hits = []
        for net in dict.fromkeys(named):
            for bad, why in special:
                if net.version == bad.version and net.overlaps(bad):
                    inside = net if net.subnet_of(bad) else bad
                    hits.append((str(inside.network_address), net, bad, why))
        if not hits:
            continue
        table = pa.table({name: pa.array([h[0] for h in hits], pa.string())})
        for hit, (_, net, bad, why) in zip(_possibly(rule.ast, table, lists), hits, strict=True):
            if hit:
                shown = ip_text(net) if net.subnet_of(bad) else f"{ip_text(net)}, which holds {bad},"
                out.append((shown, role, bad, why))
    return list(dict.fromkeys(out))


def _safety_gate(mitigation: Mitigation) -> list[str]:
    """The safety problems no admin override covers (empty: it may go on)."""
    problems = safety_problems(mitigation)
    overridden = set((mitigation.safety_override or {}).get("problems", []))
    return [p for p in problems if p not in overridden] + unroutable_problems(mitigation)


def mitigation_override_safety(*, mitigation: Mitigation, user: Any, reason: str) -> Mitigation:
    """An admin lets a rule through the safety check, with a reason; audited, and only for today's problems.

    The override lists the problems it covers: a later change that adds a new one is refused again.
    """
    _require_role(roles.is_admin(user), "only an admin may override the safety check")
    _require(bool(reason.strip()), "say why the safety check is overridden")
    _require(mitigation.state in (State.DRAFT, State.PROPOSED), "only a draft or a proposal can be overridden")
    problems = safety_problems(mitigation)
    unroutable = unroutable_problems(mitigation)
    # Pointless while a problem no override covers remains: the rule could never go live.
    _require(not unroutable, "no admin override covers this: " + "; ".join(unroutable))
    _require(bool(problems), "the safety check finds nothing to override")
    before = {"safety_override": mitigation.safety_override}
    mitigation.safety_override = {
        "by": user.get_username(),
        "at": timezone.now().isoformat(),
        "reason": reason.strip()[:2000],
        "problems": problems,
    }
    mitigation.save(update_fields=["safety_override"])
    MitigationEvent.objects.create(
        mitigation=mitigation,
        actor_name=_actor_name(user),
        message=f"safety check overridden by {user.get_username()}: {reason.strip()[:500]}",
    )
    audit_record(
        action="mitigation.safety_override",
        obj=mitigation,
        before=before,
        after={"safety_override": mitigation.safety_override},
        actor=user,
    )
    return mitigation


def _possibly(node: Any, table: pa.Table, lists: Mapping[str, Sequence]) -> Any:
    """Rows for which some value of the fields not in ``table`` makes ``node`` true (three-valued logic)."""
    can_true, _ = rule_coverage.possible_values(node, table, lists)
    return can_true


def mitigation_propose(*, mitigation: Mitigation, user: Any) -> Mitigation:
    """Ask for approval; refused out of scope, when a target refuses the rule, by safety, or above the ceiling.

    When the rule was never simulated, proposing simulates it over the attack's samples
    and the customer's baseline; with no traffic at all its collateral is unknown (high).
    The approvers its blast radius asks for are notified.
    """
    _require_role(roles.can_act(user), "only engineers may propose mitigations")
    if mitigation.state == State.PROPOSED:
        return mitigation
    _require_state(mitigation.state == State.DRAFT, f"only a draft can be proposed (this one is {mitigation.state})")
    _require_scoped(mitigation)
    _compile(mitigation)  # lists may have changed since the draft
    mitigation.save(update_fields=["compiled", "compile_errors"])
    if mitigation.compile_errors:
        raise MitigationError("a target cannot enforce it: " + "; ".join(mitigation.compile_errors.values()))
    problems = _safety_gate(mitigation)
    if problems:
        raise MitigationError("refused by the safety check: " + "; ".join(problems))
    if mitigation.simulation is None or mitigation.simulation.get("unavailable"):
        try:
            mitigation_simulate(mitigation=mitigation, user=user)
        except (MitigationError, ValueError, OSError) as exc:
            # The approver sees why: and unknown collateral needs an admin.
            mitigation.simulation = {"unavailable": str(exc)[:500]}
            mitigation.simulated_at = timezone.now()
            mitigation.save(update_fields=["simulation", "simulated_at"])
    level, reasons = blast_radius(mitigation)
    if level == BlastRadius.REFUSED:
        raise MitigationError("refused by its blast radius: " + "; ".join(reasons))
    _transition(
        mitigation,
        State.PROPOSED,
        user=user,
        message=f"proposed; blast radius {level}, needs {approvers_wanted(level)}: " + "; ".join(reasons),
        required_approvals=APPROVALS_BY_LEVEL[level],
        approval_reasons=reasons,
        blast_radius=level,
        proposed_at=timezone.now(),
    )
    _notify_approvers(mitigation, level)
    return mitigation


def _notify_approvers(mitigation: Mitigation, level: str) -> None:
    """Mail the people who may approve at this level and post to the notification webhooks, with a link."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    role = roles.ADMIN if level == BlastRadius.HIGH else roles.SENIOR_ENGINEER
    groups = [roles.ADMIN] if role == roles.ADMIN else [roles.SENIOR_ENGINEER, roles.ADMIN]
    users = get_user_model().objects.filter(is_active=True).exclude(pk=mitigation.author_id).exclude(email="")
    wanted = users.filter(groups__name__in=groups)
    if role == roles.ADMIN:
        wanted = wanted | users.filter(is_superuser=True)
    recipients = sorted(set(wanted.values_list("email", flat=True))) or list(settings.SOC_NOTIFICATION_EMAILS)
    link = f"{settings.SITE_URL.rstrip('/')}{reverse('mitigation-approval', args=[mitigation.pk])}"
    text = (
        f"{mitigation.name} for {mitigation.customer.name} needs {approvers_wanted(level)} "
        f"(blast radius {level}): {mitigation.summary[:200]} · {link}"
    )
    urls = list(settings.NOTIFICATION_WEBHOOK_URLS)

    def enqueue() -> None:
        from tickets import tasks as ticket_tasks

        try:
            if recipients:
                ticket_tasks.send_notification_email.delay(f"Shieldwall: approve {mitigation.name}", text, recipients)
            for url in urls:
                ticket_tasks.post_webhook.delay(
                    url, {"text": text, "mitigation": mitigation.pk, "blast_radius": level, "url": link}
                )
        except Exception:  # a notification never blocks the proposal
            log.warning("could not enqueue approval notifications for %s", mitigation.name, exc_info=True)

    transaction.on_commit(enqueue, robust=True)


def mitigation_withdraw(*, mitigation: Mitigation, user: Any) -> Mitigation:
    """Back to draft (to edit it), dropping the approvals given so far."""
    _require_role(roles.can_act(user), "only engineers may withdraw mitigations")
    with transaction.atomic():
        locked = Mitigation.objects.select_for_update().get(pk=mitigation.pk)
        # An approved one is withdrawn by rolling it back; answering "done" and keeping it would lie.
        _require(
            locked.state == State.PROPOSED,
            f"only a proposal can be withdrawn (it is {locked.get_state_display().lower()})",
        )
        locked.approvals.all().delete()
        _transition(locked, State.DRAFT, user=user, message="withdrawn to draft", expected=State.PROPOSED)
    mitigation.refresh_from_db()
    return mitigation


# --------------------------------------------------------------------------- approve and apply


def mitigation_approve(*, mitigation: Mitigation, user: Any, comment: str = "") -> Mitigation:
    """One approval; the mitigation is approved when it has what its blast radius needs.

    Low: one senior engineer; medium: two; high (or unknown collateral): an admin; above
    the ceiling: nobody. The level is recomputed from the stored simulation here, so no
    path (page, API, bulk) approves more cheaply than the gate says.
    """
    _require_role(roles.can_approve(user), "only a senior engineer or an admin may approve")
    _require_role(user.pk != mitigation.author_id, "you wrote this mitigation: another senior engineer must approve it")
    with transaction.atomic():
        locked = (
            Mitigation.objects.select_for_update(of=("self",))  # PostgreSQL: not the nullable joined rows
            .select_related("customer", "enforcement_target", "mitigation_list", "attack")
            .get(pk=mitigation.pk)
        )
        _require_state(
            locked.state == State.PROPOSED, f"only a proposed mitigation can be approved (it is {locked.state})"
        )
        _require_state(
            not locked.approvals.filter(user=user).exists(), "you already approved it: another senior must approve"
        )
        _require_scoped(locked)
        problems = _safety_gate(locked)
        _require(not problems, "refused by the safety check: " + "; ".join(problems))
        _require(locked.simulation is not None, "simulate it first: approval needs its blast radius")
        level, reasons = blast_radius(locked)
        _require(level != BlastRadius.REFUSED, "refused by its blast radius: " + "; ".join(reasons))
        if level == BlastRadius.HIGH:
            _require_role(
                roles.is_admin(user),
                f"its blast radius is high ({'; '.join(reasons)}): an admin (incident lead) must approve",
            )
        required = APPROVALS_BY_LEVEL[level]
        if (required, level) != (locked.required_approvals, locked.blast_radius):
            locked.required_approvals, locked.blast_radius, locked.approval_reasons = required, level, reasons
            locked.save(update_fields=["required_approvals", "blast_radius", "approval_reasons"])
        Approval.objects.create(mitigation=locked, user=user, comment=comment[:2000])
        count = locked.approvals.count()
        audit_record(
            action="mitigation.approval",
            obj=locked,
            after={"approver": user.get_username(), "count": count, "blast_radius": level},
            actor=user,
        )
        if count >= required:
            _transition(
                locked,
                State.APPROVED,
                user=user,
                message=f"approved ({count} of {required}, blast radius {level})",
                approved_at=timezone.now(),
            )
        else:
            MitigationEvent.objects.create(
                mitigation=locked,
                actor_name=_actor_name(user),
                message=f"approval {count} of {required} by {user.get_username()}",
            )
            _timeline(
                locked,
                user=user,
                text=f"Mitigation {locked.name}: approval {count} of {required} by {user.get_username()}",
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
    mitigation = (
        Mitigation.objects.select_related("customer", "mitigation_list", "enforcement_target")
        .filter(pk=mitigation_id)
        .first()
    )
    if mitigation is None or mitigation.state != State.APPROVED:
        return mitigation
    if not _transition(mitigation, State.APPLYING, user=None, message="applying", expected=State.APPROVED, progress=0):
        return mitigation
    _compile(mitigation)  # list items and their remaining TTLs as of now
    answers: dict[str, Any] = {}
    done: list[str] = []
    # Idempotent per target: one the ledger already shows installed (an earlier delivery of this
    # task got that far) is not written twice.
    already = {t: dict(h) for t, h in ledger.holding(mitigation) if t in ledger.applied_on(mitigation)}
    for index, target in enumerate(mitigation.targets):
        if target in already:
            answers[target] = already[target]
            done.append(target)
            continue
        try:
            backend = _backend(mitigation, target)
        except BackendError as exc:
            backend = _Refusing(exc)
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


class _Refusing(Backend):
    """A target that cannot be reached at all (unconfigured, disabled): its step fails in the ledger."""

    def __init__(self, exc: BackendError) -> None:
        self.exc = exc

    def apply(self, spec: Spec) -> dict[str, Any]:
        raise self.exc


def backend_readable(mitigation: Mitigation, target: str) -> bool:
    """Can this target be read back (nft list, the Cloudflare API)? An export cannot."""
    try:
        backend = _backend(mitigation, target)
    except BackendError:
        return False
    return backend.production and type(backend).verify is not Backend.verify


def backend_read(mitigation: Mitigation, target: str) -> dict[str, Any]:
    """Read one target back: whether it holds the mitigation (and its counters), for reconciliation."""
    backend = _backend(mitigation, target)
    options = _options(mitigation, target)
    spec = _spec(mitigation, target)
    spec.answer = {}  # the interrupted step recorded no handle: read by the mitigation's name or tag
    if hasattr(backend, "find"):  # Cloudflare: what it holds under the mitigation's tag
        resources = backend.find(spec)
        return {"found": bool(resources), "installed": {"resources": len(resources)}, "at": backend.location(options)}
    verification = backend.verify([spec], options)
    if verification is None:
        raise BackendError(f"{target} cannot be read back")
    installed = verification.installed.get(mitigation.name)
    return {"found": installed is not None, "installed": installed or {}, "at": backend.location(options)}


def backend_undo(mitigation: Mitigation, target: str, handle: dict) -> dict[str, Any]:
    """Remove ``mitigation`` from one target, with the handle the ledger recorded when applying it."""
    spec = _spec(mitigation, target)
    spec.answer = handle or spec.answer
    return _backend(mitigation, target).remove(spec)


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


def _remove_everywhere(mitigation: Mitigation, op: str) -> tuple[dict, list[str]]:
    """Remove it from every target, each removal a ledger step (rollback, expiry, compensation)."""
    answers = dict(mitigation.backend_answers or {})
    errors = []
    for target in mitigation.targets:
        try:
            backend = _backend(mitigation, target)
            removal = ledger.step(
                mitigation,
                target,
                op,
                lambda b=backend, t=target: b.remove(_spec(mitigation, t)),
                retry=not backend.retries_itself,
            )
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
    op = EnforcementStep.Op.EXPIRE if to_state == State.EXPIRED else EnforcementStep.Op.ROLLBACK
    answers, errors = _remove_everywhere(mitigation, op)
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
    for mitigation in Mitigation.objects.due_to_expire(now).select_related(
        "customer", "mitigation_list", "enforcement_target"
    )[:200]:
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
        answers, errors = _remove_everywhere(mitigation, EnforcementStep.Op.COMPENSATE)
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


def _lists_desired(mitigation: Mitigation) -> dict[str, list[tuple[str, int | None, str]]]:
    """Per list the mitigation enforces ("" for an IP-list mitigation, else each ``$name`` of its
    rule): the current, unexpired items with their seconds left."""
    if mitigation.kind == Mitigation.Kind.IP_LIST:
        return {"": _list_items(mitigation.mitigation_list)}
    try:
        names = mitigation_rule(mitigation).lists
    except RuleError:
        return {}
    usable = MitigationList.objects.usable_by(mitigation.customer)
    return {name: _list_items(mlist) for name in sorted(names) if (mlist := usable.filter(name=name).first())}


def mitigation_sync_lists(*, mitigation: Mitigation) -> dict[str, dict[str, str]]:
    """Bring every target's copy of the mitigation's lists to the lists' current items (added,
    removed, expired), record per target each item's state, and return those states."""
    desired = _lists_desired(mitigation)
    if not desired or mitigation.state != State.ACTIVE:
        return {}
    answers = dict(mitigation.backend_answers or {})
    states: dict[str, dict[str, str]] = {}
    for target in mitigation.targets:
        try:
            backend = _backend(mitigation, target)
        except BackendError:
            continue  # no configured target: nothing of the list is installed anywhere
        if not backend.production:
            continue
        try:
            result = backend.sync_lists(_spec(mitigation, target), desired)
        except BackendError as exc:
            states[target] = {value: f"error: {exc.message}" for items in desired.values() for value, _, _ in items}
        else:
            states[target] = result["items"]
            answers[target] = result["answer"]
        answers[target] = {**answers.get(target, {}), "list_items": states[target]}
    Mitigation.objects.filter(pk=mitigation.pk).update(backend_answers=answers)
    mitigation.backend_answers = answers
    return states


def list_sync_mitigations(*, mitigation_list_id: int) -> int:
    """The task body after a list changed: sync every active mitigation that enforces it."""
    mlist = MitigationList.objects.filter(pk=mitigation_list_id).first()
    if mlist is None:
        return 0
    users = Mitigation.objects.active().filter(Q(mitigation_list=mlist) | Q(expression__contains=f"${mlist.name}"))
    count = 0
    for mitigation in users.select_related("customer", "mitigation_list", "enforcement_target"):
        if mitigation.kind == Mitigation.Kind.IP_LIST or mlist.name in _lists_desired(mitigation):
            mitigation_sync_lists(mitigation=mitigation)
            count += 1
    return count


def _list_changed(mitigation_list_id: int) -> None:
    from mitigations import tasks

    transaction.on_commit(lambda: tasks.sync_list.delay(mitigation_list_id))


def _stray_id(name: str) -> int | None:
    """The mitigation id in a Shieldwall name (sw-<id> or sw-<id>-<tag>), None for anything else."""
    m = re.match(r"sw-([0-9]{1,18})(?:-[0-9a-z]+)?(?::|$)", name)
    return int(m.group(1)) if m else None


def mitigations_check_drift() -> int:
    """The beat: what each backend reads back vs what should be active. Returns mitigations in drift."""
    now = timezone.now()
    active = list(Mitigation.objects.active().select_related("customer", "mitigation_list", "enforcement_target"))
    for mitigation in active:
        # Lists first: an item added, removed or expired since the last check reaches the targets
        # now, so what is then compared is what the ledger holds.
        mitigation_sync_lists(mitigation=mitigation)
    transient = set(Mitigation.objects.filter(state__in=[State.APPLYING, State.APPROVED]).values_list("id", flat=True))
    # What should be installed is what the ledger says each target holds: an active mitigation's
    # applies, and a failed one whose undo did not go through (it is still expected there).
    failed = Mitigation.objects.filter(state=State.FAILED, steps__isnull=False).distinct()
    live = active + list(failed.select_related("customer", "mitigation_list", "enforcement_target"))
    groups: dict[tuple[str, str], tuple[Backend, dict, list[tuple[Mitigation, str]]]] = {}
    drifting: set[int] = set()
    updates: dict[int, Mitigation] = {}
    for mitigation in live:
        # A mitigation applied before the ledger existed has no steps: all its targets are expected.
        ledgered = mitigation.steps.exists()
        held = dict(ledger.holding(mitigation)) if ledgered else dict.fromkeys(mitigation.targets, {})
        for target in mitigation.targets:
            try:
                backend = _backend(mitigation, target)
            except BackendError:
                continue  # no configured target: nothing of it can be installed anywhere
            if not backend.production:
                continue
            options = _options(mitigation, target)
            if target not in held:
                if mitigation.state == State.ACTIVE:
                    m = updates.setdefault(mitigation.pk, mitigation)
                    m.drift = {**(m.drift or {}), target: "the ledger shows no apply in force on it"}
                    drifting.add(m.pk)
                continue
            key = (target_kind(target), backend.location(options))
            groups.setdefault(key, (backend, options, []))[2].append((mitigation, target))
    for (_kind, location), (backend, options, pairs) in groups.items():
        specs = [_spec(m, t) for m, t in pairs]
        state, _ = BackendState.objects.get_or_create(key=location, defaults={"checked_at": now})
        try:
            verification = backend.verify(specs, options)
        except BackendError as exc:
            state.error, state.checked_at = exc.message, now
            state.save()
            continue
        if verification is None:
            continue
        strays = [n for n in verification.unexpected if _stray_id(n) not in transient]
        state.installed, state.unexpected, state.error, state.checked_at = verification.installed, strays, "", now
        state.save()
        for m, target in pairs:
            found = verification.installed.get(m.name)
            m = updates.setdefault(m.pk, m)
            m.drift = dict(m.drift or {})
            differs = verification.differences.get(m.name)
            if found is None:
                m.drift[target] = f"not installed at {location}"
                drifting.add(m.pk)
            elif differs:
                m.drift[target] = f"differs at {location}: " + "; ".join(differs)
                m.hits = {**(m.hits or {}), target: {**found, "at": now.isoformat()}}
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
        _list_changed(mitigation_list.pk)
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
    _list_changed(item.mitigation_list_id)


def list_items_purge_expired(*, now: datetime | None = None) -> int:
    expired = ListItem.objects.filter(expires_at__lte=now or timezone.now())
    changed = set(expired.values_list("mitigation_list_id", flat=True))
    deleted, _ = expired.delete()
    for list_id in changed:
        _list_changed(list_id)
    return deleted

"""What a Cloudflare plan allows, checked on compiled requests before any of them is sent.

Figures from Cloudflare's documentation (WAF custom rules, rate limiting rules
"Availability", Lists "Availability", IP Access rules, Lists "List names"):

============================  ======  ======  ========  ==========
                              Free    Pro     Business  Enterprise
============================  ======  ======  ========  ==========
custom rules per zone         5       20      100       1,000
rate limiting rules per zone  1       2       5         100
counting period up to         10 s    60 s    600 s     65,535 s
mitigation timeout up to      10 s    1 h     1 day     1 day
custom lists per account      1       10      10        1,000
list items per account        10,000  10,000  10,000    500,000
``matches`` (regex)           no      no      yes       yes
============================  ======  ======  ========  ==========

Rate limiting periods and timeouts are one of Cloudflare's supported values
(``SUPPORTED_PERIODS``). Counting characteristics other than the source address (and the
mandatory ``cf.colo.id``) need Enterprise with Advanced Rate Limiting. IP Access ranges
are IPv4 /16 or /24 and IPv6 /32, /48 or /64. List names match ``^[a-z0-9_]+$``, at most
50 characters.

``plan_problems`` is plain Python: it reads the compiled requests and, for the counted
limits, what the zone and account already hold (``Usage``; a count that is None was not
read and is not checked). Each problem names the limit it breaks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .ast import Compare, walk
from .errors import RuleError
from .parser import parse

PLANS = ("free", "pro", "business", "enterprise")
SUPPORTED_PERIODS = (
    *(10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600),
    *(900, 1200, 1800, 2400, 3600, 65535, 86400),
)
BASIC_CHARACTERISTICS = frozenset({"ip.src", "cf.colo.id"})
LIST_NAME = re.compile(r"[a-z0-9_]{1,50}")
ACCESS_RANGES = {4: (16, 24), 6: (32, 48, 64)}
CUSTOM_PHASE = "http_request_firewall_custom"
RATELIMIT_PHASE = "http_ratelimit"
_ENTRYPOINT = re.compile(r"^/zones/[^/]+/rulesets/phases/([a-z_]+)/entrypoint$")
_RULES = re.compile(r"^/zones/[^/]+/rulesets/[^/]+/rules$")


@dataclass(frozen=True)
class PlanLimits:
    custom_rules: int
    ratelimit_rules: int
    max_period: int
    max_mitigation_timeout: int
    lists: int
    list_items: int
    regex: bool
    any_characteristic: bool


LIMITS = {
    "free": PlanLimits(5, 1, 10, 10, 1, 10_000, False, False),
    "pro": PlanLimits(20, 2, 60, 3600, 10, 10_000, False, False),
    "business": PlanLimits(100, 5, 600, 86400, 10, 10_000, True, False),
    "enterprise": PlanLimits(1000, 100, 65535, 86400, 1000, 500_000, True, True),
}


@dataclass(frozen=True)
class Usage:
    """What the zone/account holds now; None = not read."""

    custom_rules: int | None = None
    ratelimit_rules: int | None = None
    lists: int | None = None
    list_items: int | None = None


def phase_of(request: Mapping) -> str:
    """The zone phase a ruleset request adds a rule to, or "" if it is no zone rule."""
    path = str(request.get("path", ""))
    if m := _ENTRYPOINT.match(path):
        return m.group(1)
    if _RULES.match(path):
        body = request.get("body") or {}
        return RATELIMIT_PHASE if isinstance(body, dict) and "ratelimit" in body else CUSTOM_PHASE
    return ""


def _rule_bodies(request: Mapping) -> list[dict]:
    body = request.get("body") or {}
    if isinstance(body, dict) and isinstance(body.get("rules"), list):
        return [r for r in body["rules"] if isinstance(r, dict)]
    return [body] if isinstance(body, dict) else []


def _uses_regex(expression: str) -> bool:
    try:
        rule = parse(expression)
    except RuleError:
        return " matches " in expression or "~" in expression
    return any(isinstance(node, Compare) and node.op == "matches" for node in walk(rule.ast))


def _plan_name(plan: str) -> str:
    return plan.capitalize()


def plan_problems(requests: Iterable[Mapping], plan: str, usage: Usage | None = None) -> list[str]:
    """Every way the requests break the plan's rules; [] when they fit. ``plan`` "" or unknown:
    only the rules every plan shares (IP Access masks, list names) are checked."""
    usage = usage or Usage()
    limits = LIMITS.get(plan)
    problems: list[str] = []
    new = {CUSTOM_PHASE: 0, RATELIMIT_PHASE: 0}
    new_lists = new_items = 0
    for request in requests:
        path = str(request.get("path", ""))
        body = request.get("body")
        if path.endswith("/firewall/access_rules/rules") and isinstance(body, dict):
            problems.extend(_access_problems(body))
        elif path.endswith("/rules/lists") and isinstance(body, dict):
            new_lists += 1
            name = str(body.get("name", ""))
            if not LIST_NAME.fullmatch(name):
                problems.append(
                    f"list name {name[:60]!r}: Cloudflare list names use only a-z, 0-9 and _ (^[a-z0-9_]+$), "
                    "at most 50 characters"
                )
        elif path.endswith("/items") and "/rules/lists/" in path and isinstance(body, list):
            new_items += len(body)
        phase = phase_of(request)
        if phase not in new:
            continue
        for rule in _rule_bodies(request):
            new[phase] += 1
            if limits is None:
                continue
            if not limits.regex and _uses_regex(str(rule.get("expression", ""))):
                problems.append(
                    f"the {_plan_name(plan)} plan has no regular expressions: `matches` needs a Business or "
                    "Enterprise plan"
                )
            if phase == RATELIMIT_PHASE:
                problems.extend(_ratelimit_problems(rule.get("ratelimit") or {}, plan, limits))
    if limits is None:
        return problems
    counted = (
        (CUSTOM_PHASE, usage.custom_rules, limits.custom_rules, "custom rules per zone"),
        (RATELIMIT_PHASE, usage.ratelimit_rules, limits.ratelimit_rules, "rate limiting rules per zone"),
    )
    for phase, have, limit, what in counted:
        if new[phase] and have is not None and have + new[phase] > limit:
            problems.append(
                f"the {_plan_name(plan)} plan allows {limit:,} {what}; the zone has {have:,} and this adds {new[phase]}"
            )
    if new_lists and usage.lists is not None and usage.lists + new_lists > limits.lists:
        problems.append(
            f"the {_plan_name(plan)} plan allows {limits.lists:,} custom lists per account; the account has "
            f"{usage.lists:,}"
        )
    if new_items and usage.list_items is not None and usage.list_items + new_items > limits.list_items:
        problems.append(
            f"the {_plan_name(plan)} plan allows {limits.list_items:,} list items per account; "
            f"{usage.list_items:,} are in use and this adds {new_items:,}"
        )
    return problems


def _ratelimit_problems(ratelimit: Mapping, plan: str, limits: PlanLimits) -> list[str]:
    problems = []
    name = _plan_name(plan)
    period = ratelimit.get("period")
    if period not in SUPPORTED_PERIODS or period > limits.max_period:
        allowed = [p for p in SUPPORTED_PERIODS if p <= limits.max_period]
        problems.append(
            f"rate limiting period {period} s is not available on the {name} plan "
            f"(counting periods: {', '.join(map(str, allowed))} s)"
        )
    timeout = ratelimit.get("mitigation_timeout")
    if timeout != 0 and (timeout not in SUPPORTED_PERIODS or timeout > limits.max_mitigation_timeout):
        problems.append(
            f"mitigation timeout {timeout} s is not available on the {name} plan "
            f"(up to {limits.max_mitigation_timeout:,} s, one of Cloudflare's supported values)"
        )
    if timeout == 0 and plan != "enterprise":
        problems.append(f"mitigation timeout 0 (throttle) needs an Enterprise plan, not {name}")
    extra = [c for c in ratelimit.get("characteristics", []) if c not in BASIC_CHARACTERISTICS]
    if extra and not limits.any_characteristic:
        problems.append(
            f"counting by {', '.join(extra)} needs Enterprise with Advanced Rate Limiting; the {name} plan "
            "counts by IP only"
        )
    return problems


def _access_problems(body: Mapping) -> list[str]:
    config = body.get("configuration") or {}
    if config.get("target") != "ip_range":
        return []
    value = str(config.get("value", ""))
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [f"IP Access rule value {value[:60]!r} is not an IP range"]
    allowed = ACCESS_RANGES[net.version]
    if net.prefixlen not in allowed:
        masks = ", ".join(f"/{n}" for n in allowed)
        return [f"IP Access rules take IPv{net.version} ranges of {masks} only, not {value}"]
    return []

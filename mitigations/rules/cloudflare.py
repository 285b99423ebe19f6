"""Cloudflare API request bodies for a rule, one function per product.

Shapes follow Cloudflare's API documentation:

- WAF custom rule: a rule in the zone's ``http_request_firewall_custom`` phase
  ruleset. With ``ruleset_id`` it is ``POST /zones/{zone_id}/rulesets/{ruleset_id}/rules``
  (adds one rule, leaves the others alone); without, ``PUT .../rulesets/phases/
  http_request_firewall_custom/entrypoint`` with ``{"rules": [rule]}``, which *replaces*
  the entry point's rules: a backend should prefer the rule endpoint once it knows the id.
- Rate limiting rule: same, in the ``http_ratelimit`` phase, with
  ``ratelimit: {characteristics, period, requests_per_period, mitigation_timeout}``.
- IP Access rule: ``POST /zones/{zone_id}/firewall/access_rules/rules`` with
  ``{mode, configuration: {target, value}, notes}``.
- Lists: ``POST /accounts/{account_id}/rules/lists`` then ``POST .../lists/{list_id}/items``;
  the second path keeps the ``{list_id}`` placeholder until the first answer gives the id.
- Magic Firewall: a rule in the account's ``magic_transit`` phase ruleset (the rulesets
  engine replaced the older ``/magic/network_firewall`` endpoints).

The expression sent is always the rule's canonical ``to_text()``. What a product cannot
evaluate is refused with ``CompileError``: packet fields (``ip.ttl``, ``tcp.flags``, ports)
in the WAF, HTTP fields in Magic Firewall.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .ast import Call, Compare, FieldRef, Int, Range, SetLit, to_text, walk
from .errors import CompileError
from .fields import FIELDS
from .parser import Rule, parse

MAX_EXPRESSION = 4096
WAF_ACTIONS = {"block", "managed_challenge", "js_challenge", "challenge", "log", "skip"}
RATELIMIT_ACTIONS = {"block", "managed_challenge", "js_challenge", "challenge", "log"}
MAGIC_ACTIONS = {"block", "skip"}
ACCESS_MODES = {"block", "challenge", "whitelist", "js_challenge", "managed_challenge"}
# Cloudflare's supported counting periods and mitigation timeouts (seconds); which of them a
# zone may use depends on its plan (cloudflare_plans.py).
RATELIMIT_PERIODS = (10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600, 900, 1200, 1800, 2400, 3600, 65535)
MITIGATION_TIMEOUTS = (0, *RATELIMIT_PERIODS[:-1], 86400)
# Packet-level fields the WAF has no value for; the rest of L3 (source address and its
# geo/ASN) it knows.
WAF_REFUSED = {name for name, spec in FIELDS.items() if spec.layer != "L7"} - {
    "ip.src",
    "ip.src.asnum",
    "ip.src.country",
    "ip.src.continent",
    "ip.geoip.asnum",
    "ip.geoip.country",
}
# Where each function is evaluated (Cloudflare's Functions reference): bit_slice only in
# Magic Firewall; the string and array functions only on HTTP requests.
WAF_REFUSED_FUNCTIONS = {"bit_slice": "bit_slice() is a Magic Firewall function: use the magic_firewall kind"}
MAGIC_FUNCTIONS = {"bit_slice"}
LIST_NAME = re.compile(r"[a-z0-9_]{1,50}")
COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class CloudflareRequest:
    method: str
    path: str
    body: dict | list = field(default_factory=dict)


def _rule(rule: Rule | str) -> Rule:
    return parse(rule) if isinstance(rule, str) else rule


def _expression(rule: Rule, product: str) -> str:
    text = rule.to_text()
    if len(text) > MAX_EXPRESSION:
        raise CompileError(
            product, text[:60] + "...", f"Cloudflare expressions are at most {MAX_EXPRESSION} characters"
        )
    return text


def _check_fields(rule: Rule, product: str, refused: set[str], reason: str) -> None:
    for node in walk(rule.ast):
        if isinstance(node, FieldRef) and node.name in refused:
            raise CompileError(product, node.name, reason.format(field=node.name))


def _check_functions(rule: Rule, product: str, magic: bool) -> None:
    for node in walk(rule.ast):
        if not isinstance(node, Call):
            continue
        if magic and node.name not in MAGIC_FUNCTIONS:
            raise CompileError(
                product, to_text(node), f"Magic Firewall filters packets and has no {node.name}(): use the waf kind"
            )
        if not magic and node.name in WAF_REFUSED_FUNCTIONS:
            raise CompileError(product, to_text(node), WAF_REFUSED_FUNCTIONS[node.name])


def _choose(value: str, allowed: Iterable, product: str, what: str) -> None:
    if value not in allowed:
        raise CompileError(product, str(value), f"{what} must be one of {', '.join(map(str, allowed))}")


def _ruleset_request(scope: str, scope_id: str, phase: str, ruleset_id: str | None, body: dict) -> CloudflareRequest:
    if ruleset_id:
        return CloudflareRequest("POST", f"/{scope}/{scope_id}/rulesets/{ruleset_id}/rules", body)
    return CloudflareRequest("PUT", f"/{scope}/{scope_id}/rulesets/phases/{phase}/entrypoint", {"rules": [body]})


def compile_waf_rule(
    rule: Rule | str,
    action: str = "block",
    *,
    zone_id: str,
    description: str = "",
    ruleset_id: str | None = None,
    enabled: bool = True,
) -> CloudflareRequest:
    """A WAF custom rule (phase ``http_request_firewall_custom``)."""
    rule = _rule(rule)
    _choose(action, sorted(WAF_ACTIONS), "cloudflare waf", "action")
    _check_fields(
        rule,
        "cloudflare waf",
        WAF_REFUSED,
        "the WAF sees HTTP requests, not packets: {field} needs the magic_firewall kind or nftables",
    )
    _check_functions(rule, "cloudflare waf", magic=False)
    body = {
        "description": description,
        "expression": _expression(rule, "cloudflare waf"),
        "action": action,
        "enabled": enabled,
    }
    if action == "skip":
        body["action_parameters"] = {"ruleset": "current"}
    return _ruleset_request("zones", zone_id, "http_request_firewall_custom", ruleset_id, body)


def compile_rate_limit(
    rule: Rule | str,
    action: str = "block",
    *,
    zone_id: str,
    requests_per_period: int,
    period: int,
    mitigation_timeout: int,
    characteristics: Sequence[str] = ("ip.src", "cf.colo.id"),
    description: str = "",
    ruleset_id: str | None = None,
    enabled: bool = True,
) -> CloudflareRequest:
    """A rate limiting rule (phase ``http_ratelimit``). ``cf.colo.id`` is mandatory in
    ``characteristics`` and is added if missing."""
    rule = _rule(rule)
    product = "cloudflare ratelimit"
    _choose(action, sorted(RATELIMIT_ACTIONS), product, "action")
    _choose(period, RATELIMIT_PERIODS, product, "period (seconds)")
    _choose(mitigation_timeout, MITIGATION_TIMEOUTS, product, "mitigation_timeout (seconds)")
    if int(requests_per_period) < 1:
        raise CompileError(product, str(requests_per_period), "requests_per_period must be at least 1")
    _check_fields(rule, product, WAF_REFUSED, "rate limiting rules see HTTP requests, not packets: {field}")
    _check_functions(rule, product, magic=False)
    chars = list(dict.fromkeys(characteristics))
    if "cf.colo.id" not in chars:
        chars.append("cf.colo.id")
    body = {
        "description": description,
        "expression": _expression(rule, product),
        "action": action,
        "ratelimit": {
            "characteristics": chars,
            "period": period,
            "requests_per_period": int(requests_per_period),
            "mitigation_timeout": mitigation_timeout,
        },
        "enabled": enabled,
    }
    return _ruleset_request("zones", zone_id, "http_ratelimit", ruleset_id, body)


def compile_magic_firewall(
    rule: Rule | str,
    action: str = "block",
    *,
    account_id: str,
    description: str = "",
    ruleset_id: str | None = None,
    enabled: bool = True,
) -> CloudflareRequest:
    """A Magic Firewall rule (account ruleset, phase ``magic_transit``): L3/L4 fields only."""
    rule = _rule(rule)
    product = "cloudflare magic firewall"
    _choose(action, sorted(MAGIC_ACTIONS), product, "action")
    l7 = {name for name, spec in FIELDS.items() if spec.layer == "L7"}
    _check_fields(rule, product, l7, "Magic Firewall filters packets and cannot see {field}: use the waf kind")
    _check_functions(rule, product, magic=True)
    for node in walk(rule.ast):
        if isinstance(node, Compare) and node.left == FieldRef("ip.proto"):
            values = node.right.items if isinstance(node.right, SetLit) else (node.right,)
            if any(isinstance(v, Int | Range) for v in values):
                raise CompileError(
                    product, to_text(node), 'Magic Firewall\'s ip.proto is a name: write ip.proto eq "tcp"'
                )
    body = {"description": description, "expression": _expression(rule, product), "action": action, "enabled": enabled}
    if action == "skip":
        body["action_parameters"] = {"ruleset": "current"}
    return _ruleset_request("accounts", account_id, "magic_transit", ruleset_id, body)


def compile_ip_access_rule(
    value: str | int, mode: str = "block", *, zone_id: str, notes: str = ""
) -> CloudflareRequest:
    """An IP Access rule for one address, range, ASN ("AS13335" or 13335) or country ("CN").

    Cloudflare accepts ranges only as IPv4 /16 and /24 and IPv6 /32, /48 and /64;
    other prefix lengths are refused (use a List and a WAF rule instead).
    """
    product = "cloudflare ip access"
    _choose(mode, sorted(ACCESS_MODES), product, "mode")
    target, canonical = _access_target(str(value).strip(), product)
    body = {"mode": mode, "configuration": {"target": target, "value": canonical}, "notes": notes}
    return CloudflareRequest("POST", f"/zones/{zone_id}/firewall/access_rules/rules", body)


def _access_target(value: str, product: str) -> tuple[str, str]:
    upper = value.upper()
    if re.fullmatch(r"(AS)?[0-9]{1,10}", upper):
        return "asn", "AS" + upper.removeprefix("AS")
    if COUNTRY.fullmatch(value):
        return "country", value
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise CompileError(
            product, value, "expected an IP address, a CIDR range, an ASN or a 2-letter country code"
        ) from None
    if net.prefixlen == net.max_prefixlen:
        return ("ip" if net.version == 4 else "ip6"), str(net.network_address)
    allowed = (16, 24) if net.version == 4 else (32, 48, 64)
    if net.prefixlen not in allowed:
        lengths = ", ".join(f"/{n}" for n in allowed)
        raise CompileError(
            product,
            value,
            f"IP Access rules take IPv{net.version} ranges of {lengths} only; "
            "use a List with a WAF rule for other sizes",
        )
    return "ip_range", str(net)


def compile_list(
    name: str, items: Iterable[tuple[str, str] | str], *, account_id: str, description: str = ""
) -> list[CloudflareRequest]:
    """Create an IP List and add its items: [(cidr, comment)] or [cidr].

    Cloudflare list items take IPv4 /8../32 and IPv6 /4../64; anything else is refused.
    """
    product = "cloudflare list"
    if not LIST_NAME.fullmatch(name):
        raise CompileError(product, name, "list names are 1-50 lowercase letters, digits or underscores")
    entries = []
    for item in items:
        cidr, comment = (item, "") if isinstance(item, str) else item
        try:
            net = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            raise CompileError(product, str(cidr), "not an IP address or network") from None
        low, high = (8, 32) if net.version == 4 else (4, 64)
        if not low <= net.prefixlen <= high:
            raise CompileError(product, str(cidr), f"IPv{net.version} list items must be /{low} to /{high}")
        text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        entries.append({"ip": text, "comment": comment} if comment else {"ip": text})
    return [
        CloudflareRequest(
            "POST", f"/accounts/{account_id}/rules/lists", {"name": name, "kind": "ip", "description": description}
        ),
        CloudflareRequest("POST", f"/accounts/{account_id}/rules/lists/{{list_id}}/items", entries),
    ]


def compile_cloudflare(rule: Rule | str, action: str = "block", *, kind: str = "waf", **opts) -> CloudflareRequest:
    """Dispatch on ``kind``: waf, ratelimit or magic_firewall."""
    if kind == "waf":
        return compile_waf_rule(rule, action, **opts)
    if kind == "ratelimit":
        return compile_rate_limit(rule, action, **opts)
    if kind == "magic_firewall":
        return compile_magic_firewall(rule, action, **opts)
    raise ValueError("kind must be waf, ratelimit or magic_firewall")

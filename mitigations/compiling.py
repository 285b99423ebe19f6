"""Turn a mitigation's fields into what each backend sends: plain Python, no Django.

One function, ``compile_for``, picks the right compiler of ``mitigations.rules`` for a
kind and a target and returns a JSON-able dict (stored on the mitigation as "the
compiled form actually sent"). Whatever a target cannot express raises ``CompileError``
with the reason, so the engineer learns it when proposing, not at 3 a.m. when applying.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mitigations.rules import (
    CompileError,
    compile_ip_access_rule,
    compile_iptables,
    compile_iptables_ip_list,
    compile_list,
    compile_magic_firewall,
    compile_nftables,
    compile_nftables_ip_list,
    compile_rate_limit,
    compile_waf_rule,
    parse,
)
from mitigations.rules.cloudflare_plans import plan_problems
from mitigations.rules.fields import VALUE_RANGES

PACKET_ACTIONS = {"block": "drop", "allow": "accept"}
WAF_ACTIONS = {"block": "block", "allow": "skip", "challenge": "challenge", "managed_challenge": "managed_challenge"}
WAF_ACTIONS["log"] = "log"
ACCESS_MODES = {
    "block": "block",
    "allow": "whitelist",
    "challenge": "challenge",
    "managed_challenge": "managed_challenge",
}
MAGIC_ACTIONS = {"block": "block", "allow": "skip"}
ASN = re.compile(r"(?i)(AS)?([0-9]{1,10})")
COUNTRY = re.compile(r"[A-Za-z]{2}")


def access_target(value: str) -> tuple[str, Any]:
    """("ip", network) | ("asn", 64500) | ("country", "CN") for an IP access rule's value."""
    value = value.strip()
    if m := ASN.fullmatch(value):
        asn = VALUE_RANGES["ip.src.asnum"]
        if not asn.low <= int(m.group(2)) <= asn.high:
            raise CompileError("ip access", value, f"an AS number is {asn}: {m.group(2)} is out of range")
        return "asn", int(m.group(2))
    if COUNTRY.fullmatch(value):
        return "country", value.upper()
    try:
        return "ip", ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise CompileError(
            "ip access", value, "expected an IP address, a CIDR, an ASN (AS64500) or a country (CN)"
        ) from None


def expression_for_value(value: str) -> str:
    """The rule an IP access value stands for, for simulation, safety and packet filters."""
    kind, parsed = access_target(value)
    if kind == "asn":
        return f"ip.src.asnum eq {parsed}"
    if kind == "country":
        return f'ip.src.country eq "{parsed}"'
    if parsed.prefixlen == parsed.max_prefixlen:
        return f"ip.src eq {parsed.network_address}"
    return f"ip.src in {{{parsed}}}"


def expression_for_list(list_name: str) -> str:
    return f"ip.src in ${list_name}"


def cloudflare_list_name(name: str, list_name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"{name}_{list_name}".lower())[:50]


def _map(action: str, table: Mapping[str, str], target: str) -> str:
    if action not in table:
        raise CompileError(target, action, f"{target} cannot {action}; use one of {', '.join(table)}")
    return table[action]


# What a rate limit counts by, the same on every target ("key" in a mitigation's rate):
#   source     one bucket per source address            nftables meter, iptables hashlimit srcip, Cloudflare ip.src
#   source24   one per IPv4 /24 (IPv6 /48)              nftables, iptables; Cloudflare has no such key
#   aggregate  one bucket for all matching traffic      nftables, iptables; Cloudflare always splits per data center
#   colo       one per Cloudflare data center           Cloudflare only (cf.colo.id)
#   header:<name> cookie:<name> query:<name> ja3 ja4 asn   Cloudflare characteristics (Advanced Rate Limiting)
# Absent, ``per_source`` (default true) picks source or aggregate.
PACKET_KEYS = {"source": (True, None), "source24": (True, {4: 24, 6: 48}), "aggregate": (False, None)}
CLOUDFLARE_KEYS = {
    "source": "ip.src",
    "colo": None,
    "ja3": "cf.bot_management.ja3_hash",
    "ja4": "cf.bot_management.ja4",
    "asn": "ip.src.asnum",
}
CLOUDFLARE_KEYED = {
    "header": 'http.request.headers["{}"]',
    "cookie": 'http.request.cookies["{}"]',
    "query": 'http.request.uri.args["{}"]',
}
_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def rate_key(rate: Mapping) -> str:
    """The key a rate limit counts by (see the table above)."""
    key = str(rate.get("key") or "").strip()
    if key:
        return key
    return "source" if rate.get("per_source", True) else "aggregate"


def _packet_rate(rate: Mapping, target: str) -> dict:
    key = rate_key(rate)
    if key not in PACKET_KEYS:
        kind = key.split(":", 1)[0]
        why = {
            "colo": "a packet filter is one location: use aggregate",
            "asn": "a packet filter has no ASN data",
        }.get(kind, f"{target} sees packets, not HTTP: {key} needs the cloudflare target")
        raise CompileError(target, f"rate key {key}", why)
    per_source, masks = PACKET_KEYS[key]
    out = {
        "requests": int(rate.get("requests", 0)),
        "period": int(rate.get("period", 1)),
        "unit": "second",
        "burst": int(rate.get("burst", 0) or 0),
        "per_source": per_source,
    }
    if masks:
        out["source_mask"] = masks
    return out


def cloudflare_characteristics(rate: Mapping) -> tuple[str, ...]:
    """Cloudflare's counting characteristics for a rate limit's key; cf.colo.id is always one."""
    key = rate_key(rate)
    kind, _, arg = key.partition(":")
    if key in CLOUDFLARE_KEYS:
        char = CLOUDFLARE_KEYS[key]
        return (char, "cf.colo.id") if char else ("cf.colo.id",)
    if kind in CLOUDFLARE_KEYED and _KEY_NAME.fullmatch(arg):
        name = arg.lower() if kind == "header" else arg  # Cloudflare lowercases header names
        return (CLOUDFLARE_KEYED[kind].format(name), "cf.colo.id")
    why = {
        "source24": "Cloudflare counts per address, never per /24: use source",
        "aggregate": "Cloudflare counts per data center at the least: use colo",
    }.get(key, "use source, colo, header:<name>, cookie:<name>, query:<name>, ja3, ja4 or asn")
    raise CompileError("cloudflare ratelimit", f"rate key {key}", why)


def compile_for(
    target: str,
    *,
    name: str,
    kind: str,
    action: str,
    expression: str = "",
    value: str = "",
    rate: Mapping | None = None,
    items: Sequence[tuple[str, int | None, str]] = (),
    list_name: str = "",
    lists: Mapping[str, Sequence] | None = None,
    options: Mapping[str, Any] | None = None,
    description: str = "",
    scope: Sequence[str] = (),
) -> dict:
    """The compiled form of one mitigation for one target (nftables, iptables, cloudflare, export).

    ``scope``: the customer's destination networks; an IP list's packet-filter rules match
    only traffic to them (expressions carry their own ``ip.dst`` clause).

    ``items`` are (cidr, ttl seconds or None, comment) of an IP list; ``lists`` the values
    of other ``$lists`` an expression names; ``options`` zone_id/account_id (Cloudflare)
    and hook (packet filters).
    """
    options = options or {}
    rate = rate or {}
    if kind == "ip_access":
        expression = expression_for_value(value)
        if scope and target in ("nftables", "iptables"):
            # A packet filter sees every customer's traffic: only traffic to this customer's networks.
            expression = f"ip.dst in {{{' '.join(scope)}}} and ({expression})"
    elif kind == "ip_list":
        expression = expression_for_list(list_name)
    if kind == "rate_limit" and action != "block" and target in ("nftables", "iptables"):
        raise CompileError(target, action, "a packet filter rate limit drops what is over the rate: use block")
    if target == "nftables":
        verdict = _map(action, PACKET_ACTIONS, target)
        hook = options.get("hook", "input")
        if kind == "ip_list":
            text = _scope_nft_list(
                compile_nftables_ip_list(name, [(c, t) for c, t, _ in items], verdict, hook=hook), scope
            )
        else:
            text = compile_nftables(
                parse(expression),
                verdict,
                name=name,
                rate=_packet_rate(rate, target) if kind == "rate_limit" else None,
                lists=lists,
                hook=hook,
            )
        if verdict == "accept":
            text = _nft_allow_first(text, name)
        return {"ruleset": text}
    if target == "iptables":
        verdict = _map(action, PACKET_ACTIONS, target)
        if kind == "ip_list":
            script = _scope_ipt_list(compile_iptables_ip_list(name, [(c, t) for c, t, _ in items], verdict), scope)
        else:
            script = compile_iptables(
                parse(expression),
                verdict,
                name=name,
                rate=_packet_rate(rate, target) if kind == "rate_limit" else None,
                lists=lists,
            )
        rules, rules6 = script.rules, script.rules6
        if verdict == "accept":
            rules, rules6 = _ipt_allow_first(rules), _ipt_allow_first(rules6)
        return {"rules": rules, "rules6": rules6, "ipset": script.ipset}
    if target == "cloudflare":
        requests = [
            _request(r)
            for r in _cloudflare(kind, action, expression, value, rate, items, list_name, name, options, description)
        ]
        # The plan's rules that need no count of what the zone holds: refused before approval.
        plan = str(options.get("cloudflare_plan", "")).lower()
        problems = plan_problems(requests, plan)
        if problems:
            raise CompileError(f"cloudflare {plan or 'any'} plan", expression or str(value), "; ".join(problems))
        return {"requests": requests}
    if target == "export":
        # A download is filled in by whoever applies it: placeholders stand in for unknown ids.
        options = {"zone_id": "ZONE_ID", "account_id": "ACCOUNT_ID", **options}
        out: dict[str, Any] = {}
        refused = {}
        for sub in ("nftables", "iptables", "cloudflare"):
            try:
                out[sub] = compile_for(
                    sub,
                    name=name,
                    kind=kind,
                    action=action,
                    expression=expression,
                    value=value,
                    rate=rate,
                    items=items,
                    list_name=list_name,
                    lists=lists,
                    options=options,
                    description=description,
                    scope=scope,
                )
            except CompileError as exc:
                refused[sub] = str(exc)
        if not out:
            raise CompileError(
                "export", expression or value, "no format can express it: " + "; ".join(refused.values())
            )
        out["refused"] = refused
        return out
    raise ValueError(f"unknown target {target!r}")


# -- allow before drop, and the scope of IP lists on packet filters ------------------------------

NFT_CHAIN = re.compile(r"^\s*chain (\S+) \{\s*$")


def _nft_allow_first(text: str, name: str) -> str:
    """Move an allow's rules to the head of their chains (``insert``), ahead of every drop there.

    nft appends the rules of a ``table { chain { ... } }`` block; an accept appended after an
    earlier mitigation's drop never sees a packet. The chain declarations stay (they create
    the chain when it is the first mitigation); the rules become ``insert rule`` commands.
    """
    kept, inserts, chain = [], [], None
    for line in text.splitlines():
        stripped = line.strip()
        if m := NFT_CHAIN.match(line):
            chain = m.group(1)
        elif stripped == "}":
            chain = None
        elif chain and stripped.endswith(f'comment "{name}"') and " accept " in f" {stripped} ":
            inserts.append(f"insert rule inet shieldwall {chain} {stripped}")
            continue
        kept.append(line)
    return "\n".join(kept + inserts) + "\n"


def _ipt_allow_first(script: str) -> str:
    """``-I SHIELDWALL 1`` instead of ``-A``: an allow goes ahead of every drop of the chain."""
    return "\n".join(
        "-I SHIELDWALL 1 " + line[len("-A SHIELDWALL ") :]
        if line.startswith("-A SHIELDWALL ") and line.rstrip().endswith("-j ACCEPT")
        else line
        for line in script.splitlines()
    ) + ("\n" if script.endswith("\n") else "")


def _by_family(scope: Sequence[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {4: [], 6: []}
    for value in scope:
        net = ipaddress.ip_network(value, strict=False)
        out[net.version].append(str(net))
    return out


def _scope_nft_list(text: str, scope: Sequence[str]) -> str:
    """An IP list's rules match traffic to the customer's networks only; a family it has none of is dropped."""
    if not scope:
        return text
    nets = _by_family(scope)
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        for version, match in ((4, "ip saddr @"), (6, "ip6 saddr @")):
            if stripped.startswith(match):
                if not nets[version]:
                    line = None
                else:
                    daddr = "ip daddr" if version == 4 else "ip6 daddr"
                    line = line.replace(match, f"{daddr} {{ {', '.join(nets[version])} }} {match}", 1)
                break
        if line is not None:
            out.append(line)
    return "\n".join(out) + "\n"


def _scope_ipt_list(script: Any, scope: Sequence[str]) -> Any:
    if not scope:
        return script
    nets = _by_family(scope)

    def scoped(text: str, version: int) -> str:
        lines = []
        for line in text.splitlines():
            if line.startswith("-A SHIELDWALL ") and "--match-set" in line:
                if not nets[version]:
                    continue
                line = line.replace("-A SHIELDWALL ", f"-A SHIELDWALL -d {','.join(nets[version])} ", 1)
            lines.append(line)
        return "\n".join(lines) + "\n"

    return type(script)(rules=scoped(script.rules, 4), rules6=scoped(script.rules6, 6), ipset=script.ipset)


def _request(req: Any) -> dict:
    return {"method": req.method, "path": req.path, "body": req.body}


def _need(options: Mapping, key: str, product: str) -> str:
    value = str(options.get(key) or "")
    if not value:
        raise CompileError(product, key, f"needs a Cloudflare {key.replace('_', ' ')} (set it in the options)")
    return value


def _cloudflare(kind, action, expression, value, rate, items, list_name, name, options, description) -> list:
    desc = f"[{name}] {description}".strip()
    if kind == "ip_access":
        mode = _map(action, ACCESS_MODES, "cloudflare ip access")
        return [
            compile_ip_access_rule(value, mode, zone_id=_need(options, "zone_id", "cloudflare ip access"), notes=desc)
        ]
    if kind == "ip_list":
        account = _need(options, "account_id", "cloudflare list")
        zone = _need(options, "zone_id", "cloudflare list")
        cf_name = cloudflare_list_name(name, list_name)
        requests = compile_list(
            cf_name, [(c, comment) for c, _, comment in items], account_id=account, description=desc
        )
        rule = compile_waf_rule(
            parse(f"ip.src in ${cf_name}"), _map(action, WAF_ACTIONS, "cloudflare waf"), zone_id=zone, description=desc
        )
        return [*requests, rule]
    if kind == "rate_limit":
        return [
            compile_rate_limit(
                parse(expression),
                _map(action, WAF_ACTIONS, "cloudflare ratelimit"),
                zone_id=_need(options, "zone_id", "cloudflare ratelimit"),
                requests_per_period=int(rate.get("requests", 0)),
                period=int(rate.get("period", 60)),
                mitigation_timeout=int(rate.get("mitigation_timeout", 600)),
                characteristics=cloudflare_characteristics(rate),
                description=desc,
            )
        ]
    if kind == "waf_rule":
        return [
            compile_waf_rule(
                parse(expression),
                _map(action, WAF_ACTIONS, "cloudflare waf"),
                zone_id=_need(options, "zone_id", "cloudflare waf"),
                description=desc,
            )
        ]
    if kind == "firewall_rule":
        return [
            compile_magic_firewall(
                parse(expression),
                _map(action, MAGIC_ACTIONS, "cloudflare magic firewall"),
                account_id=_need(options, "account_id", "cloudflare magic firewall"),
                description=desc,
            )
        ]
    raise ValueError(f"unknown kind {kind!r}")

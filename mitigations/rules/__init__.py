"""Shieldwall's rule language: a subset of Cloudflare's Rules language.

Plain Python (no Django): parse and type-check (``parse``), simulate over traffic
(``evaluate``), and compile to enforcement targets (``compile``): nftables, iptables and
Cloudflare's APIs. See DESIGN.md and issue 6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .cloudflare import (
    CloudflareRequest,
    compile_cloudflare,
    compile_ip_access_rule,
    compile_list,
    compile_magic_firewall,
    compile_rate_limit,
    compile_waf_rule,
)
from .errors import CompileError, RuleError
from .iptables import IptablesScript, compile_iptables, compile_iptables_ip_list
from .nftables import compile_nftables, compile_nftables_ip_list
from .parser import Rule, parse

TARGETS = ("nftables", "iptables", "cloudflare")


def evaluate(rule: Rule | str, table, lists: Mapping[str, Sequence] | None = None):
    """Which rows of ``table`` the rule matches (a boolean numpy array): see ``evaluator.evaluate``.

    The evaluator is imported here, on the first simulation, because it brings numpy and
    pyarrow: parsing and compiling a rule (forms, the API, every process's URLconf) need neither.
    """
    from .evaluator import evaluate as evaluate_rows

    return evaluate_rows(rule, table, lists)


def compile(rule: Rule | str, target: str, **opts) -> str | IptablesScript | CloudflareRequest:
    """Compile ``rule`` for ``target``: "nftables" (str), "iptables" (IptablesScript) or
    "cloudflare" (CloudflareRequest; ``kind`` = waf | ratelimit | magic_firewall).
    Options are those of the target's compile function."""
    rule = parse(rule) if isinstance(rule, str) else rule
    if target == "nftables":
        return compile_nftables(rule, **opts)
    if target == "iptables":
        return compile_iptables(rule, **opts)
    if target == "cloudflare":
        return compile_cloudflare(rule, **opts)
    raise ValueError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")


def simulate(rule: Rule | str, table, lists: Mapping[str, Sequence] | None = None) -> float:
    """Share of rows matched (0.0 for an empty table): the figure approval gates on."""
    matched = evaluate(rule, table, lists)
    return float(matched.mean()) if len(matched) else 0.0


__all__ = [
    "CloudflareRequest",
    "CompileError",
    "IptablesScript",
    "Rule",
    "RuleError",
    "compile",
    "compile_cloudflare",
    "compile_ip_access_rule",
    "compile_iptables",
    "compile_iptables_ip_list",
    "compile_list",
    "compile_magic_firewall",
    "compile_nftables",
    "compile_nftables_ip_list",
    "compile_rate_limit",
    "compile_waf_rule",
    "evaluate",
    "parse",
    "simulate",
]

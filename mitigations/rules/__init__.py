"""Shieldwall's rule language: a subset of Cloudflare's Rules language.

Plain Python (no Django): parse and type-check (``parse``), simulate over traffic
(``evaluate``), and compile to enforcement targets (``compile``): nftables, iptables and
Cloudflare's APIs. See DESIGN.md and issue 6.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import CompileError, RuleError
from .parser import Rule, parse

if TYPE_CHECKING:
    from .cloudflare import (
        CloudflareRequest,
        compile_cloudflare,
        compile_ip_access_rule,
        compile_list,
        compile_magic_firewall,
        compile_rate_limit,
        compile_waf_rule,
    )
    from .iptables import IptablesScript, compile_iptables, compile_iptables_ip_list
    from .nftables import compile_nftables, compile_nftables_ip_list

# The compilers are imported when first named (PEP 562): every process parses rules (forms,
# the API, the services), but only compiling or applying a rule needs them, and they cost
# start-up a few tens of milliseconds. ``from mitigations.rules import compile_nftables``
# works as before; ``tests/console/test_startup_imports.py`` checks they stay out of start-up.
_COMPILERS = {
    "CloudflareRequest": "cloudflare",
    "compile_cloudflare": "cloudflare",
    "compile_ip_access_rule": "cloudflare",
    "compile_list": "cloudflare",
    "compile_magic_firewall": "cloudflare",
    "compile_rate_limit": "cloudflare",
    "compile_waf_rule": "cloudflare",
    "IptablesScript": "iptables",
    "compile_iptables": "iptables",
    "compile_iptables_ip_list": "iptables",
    "compile_nftables": "nftables",
    "compile_nftables_ip_list": "nftables",
}


def __getattr__(name: str) -> Any:
    module = _COMPILERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later reads are plain attribute reads
    return value


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
        from .nftables import compile_nftables

        return compile_nftables(rule, **opts)
    if target == "iptables":
        from .iptables import compile_iptables

        return compile_iptables(rule, **opts)
    if target == "cloudflare":
        from .cloudflare import compile_cloudflare

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

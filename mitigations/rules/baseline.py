"""What a baseline cannot say about a rule: when its collateral there is unknown, not 0 %.

One answer for the approval gate (mitigations) and the simulation on a sample page
(traffic): both ask this module, so a rule is never "0 % collateral" on one page and
"unknown" at the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ast import Compare, FieldRef, Int, Str, walk
from .parser import Rule

if TYPE_CHECKING:
    import pyarrow as pa

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "icmpv6": 58, "sctp": 132}
# Fields every packet or request has (or that the scope adds): their absence says nothing about the rule.
ALWAYS_THERE = {"ip.src", "ip.dst", "http.host"}


def missing_traffic(rule: Rule, table: pa.Table) -> list[str]:
    """What the rule reads that the baseline does not have: then its collateral there is unknown, not 0 %.

    A field with no value in any baseline row (UDP ports in a TCP-only capture), or a
    protocol the rule names that no baseline row carries.
    """
    missing = []
    for name in sorted(rule.fields - ALWAYS_THERE):
        if name not in table.column_names or table[name].null_count == table.num_rows:
            missing.append(f"no {name} in the baseline")
    wanted: set[int] = set()
    for node in walk(rule.ast):
        if isinstance(node, Compare) and isinstance(node.left, FieldRef) and node.left.name == "ip.proto":
            for lit in walk(node.right):
                if isinstance(lit, Int):
                    wanted.add(lit.value)
                elif isinstance(lit, Str) and lit.value.lower() in PROTOCOLS:
                    wanted.add(PROTOCOLS[lit.value.lower()])
    if wanted and "ip.proto" in table.column_names:
        present = {v for v in table["ip.proto"].to_pylist() if v is not None}
        present |= {PROTOCOLS[v.lower()] for v in present if isinstance(v, str) and v.lower() in PROTOCOLS}
        if not present & wanted:
            missing.append(f"no protocol {'/'.join(str(w) for w in sorted(wanted))} traffic in the baseline")
    if table.num_rows == 0:
        missing.append("the baseline is empty")
    return missing

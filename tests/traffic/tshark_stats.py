"""Parse tshark's ``-q -z conv,… -z endpoints,ip -z io,phs`` text into plain dicts.

Used by the statistics agreement tests. tshark prints conversation bytes with a unit
("5477 bytes", "12 kB"); a value printed in kB or MB is only known to its rounding, and
the parsed value says so by its unit.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_UNITS = {"bytes": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
_CONV = re.compile(
    r"^(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+(?P<f_ba>[\d,]+)\s+(?P<b_ba>[\d,.]+) (?P<u_ba>bytes|kB|MB|GB)\s+"
    r"(?P<f_ab>[\d,]+)\s+(?P<b_ab>[\d,.]+) (?P<u_ab>bytes|kB|MB|GB)\s+(?P<f>[\d,]+)\s+"
)


def run(path: Path) -> str:
    return subprocess.run(
        ["tshark", "-n", "-q", "-r", str(path)]
        + ["-z", "conv,ip", "-z", "conv,ipv6", "-z", "conv,tcp", "-z", "conv,udp"]
        + ["-z", "endpoints,ip", "-z", "io,phs"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse(text: str) -> dict:
    """``{"conv": {"IPv4": {(a, b): (frames a→b, bytes a→b, unit, frames b→a, bytes b→a, unit)}},
    "endpoints": {ip: (packets, bytes, tx_p, tx_b, rx_p, rx_b)}, "phs": [(depth, name, frames, bytes)]}``.

    tshark's "->" column is A to B, "<-" is B to A.
    """
    out: dict = {"conv": {}, "endpoints": {}, "phs": []}
    section = None
    for line in text.splitlines():
        head = line.strip()
        if head.endswith("Conversations"):
            section = ("conv", head.split()[0])
            out["conv"][section[1]] = {}
            continue
        if head == "IPv4 Endpoints":
            section = ("endpoints", None)
            continue
        if head == "Protocol Hierarchy Statistics":
            section = ("phs", None)
            continue
        if section is None or not head or head.startswith(("=", "Filter", "|")):
            continue
        if section[0] == "conv":
            m = _CONV.match(head)
            if m:
                out["conv"][section[1]][(m["a"], m["b"])] = (
                    int(_num(m["f_ab"])),
                    _num(m["b_ab"]) * _UNITS[m["u_ab"]],
                    m["u_ab"],
                    int(_num(m["f_ba"])),
                    _num(m["b_ba"]) * _UNITS[m["u_ba"]],
                    m["u_ba"],
                )
        elif section[0] == "endpoints":
            parts = head.split()
            if len(parts) == 7:
                out["endpoints"][parts[0]] = tuple(int(p) for p in parts[1:])
        else:
            m = re.match(r"^( *)(\S+)\s+frames:(\d+) bytes:(\d+)", line)
            if m:
                out["phs"].append((len(m[1]) // 2, m[2], int(m[3]), int(m[4])))
    return out

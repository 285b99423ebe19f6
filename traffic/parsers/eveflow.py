"""Suricata EVE ``flow`` events as traffic records: one row per flow, rule-language columns.

Flows are what a sensor keeps when packets are not: who talked to whom, on which ports,
how many packets and bytes each way, with which TCP flags. Other event types in the
file are counted and skipped; a line that is not JSON is named and skipped.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa

from traffic.parsers.bounded import DEFAULT_LIMITS, Limits, UploadRefused, bounded_copy
from traffic.parsers.httplog import LogError, LogResult

PROTO_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "IPV6-ICMP": 58, "ICMPV6": 58, "GRE": 47, "ESP": 50, "SCTP": 132}

FLOW_SCHEMA = pa.schema(
    [
        ("ts", pa.float64()),
        ("ts_end", pa.float64()),
        ("ip.src", pa.string()),
        ("ip.dst", pa.string()),
        ("ip.proto", pa.int16()),
        ("tcp.srcport", pa.int32()),
        ("tcp.dstport", pa.int32()),
        ("tcp.flags", pa.int16()),
        ("udp.srcport", pa.int32()),
        ("udp.dstport", pa.int32()),
        ("icmp.type", pa.int16()),
        ("flow.app_proto", pa.string()),
        ("flow.pkts_toserver", pa.int64()),
        ("flow.pkts_toclient", pa.int64()),
        ("flow.bytes_toserver", pa.int64()),
        ("flow.bytes_toclient", pa.int64()),
        ("flow.state", pa.string()),
    ]
)


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    text = value
    # Suricata writes +0000 / -0400 offsets, which fromisoformat reads from 3.11 on.
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_eve_flows(path: str | os.PathLike[str], *, limits: Limits | None = None) -> LogResult:
    """Read the flow events of an EVE file (JSON lines, optionally gzipped), within ``limits`` (bounded.py)."""
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    try:
        with bounded_copy(path, limits or DEFAULT_LIMITS) as copy:
            result = _read_eve_flows(copy.path)
    except UploadRefused as exc:
        raise LogError(str(exc)) from exc
    result.errors[:0] = copy.notes
    return result


def _read_eve_flows(path: Path) -> LogResult:
    opener = gzip.open if path.suffix == ".gz" else open
    columns: dict[str, list] = {name: [] for name in FLOW_SCHEMA.names}
    errors: list[str] = []
    skipped: Counter[str] = Counter()
    try:
        with opener(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    if len(errors) < 100:
                        errors.append(f"line {number}: not valid JSON: {exc}")
                    continue
                if not isinstance(event, dict) or event.get("event_type") != "flow":
                    skipped[str(event.get("event_type")) if isinstance(event, dict) else "other"] += 1
                    continue
                _add(columns, event)
    except OSError as exc:
        raise LogError(f"{path}: {exc}") from exc
    if skipped:
        errors.append("not flow events, skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    return LogResult(table=pa.table(columns, schema=FLOW_SCHEMA), errors=errors, format="eve_flow")


def _add(columns: dict[str, list], event: dict) -> None:
    flow = event.get("flow") if isinstance(event.get("flow"), dict) else {}
    proto_name = str(event.get("proto", "")).upper()
    proto = PROTO_NUMBERS.get(proto_name)
    if proto is None and proto_name.isdigit():
        proto = int(proto_name)
    sport, dport = _int(event.get("src_port")), _int(event.get("dest_port"))
    tcp = event.get("tcp") if isinstance(event.get("tcp"), dict) else {}
    try:
        flags = int(str(tcp.get("tcp_flags", "")), 16) if tcp.get("tcp_flags") else None
    except ValueError:
        flags = None
    columns["ts"].append(_epoch(flow.get("start")) or _epoch(event.get("timestamp")))
    columns["ts_end"].append(_epoch(flow.get("end")))
    columns["ip.src"].append(str(event["src_ip"]) if event.get("src_ip") else None)
    columns["ip.dst"].append(str(event["dest_ip"]) if event.get("dest_ip") else None)
    columns["ip.proto"].append(proto)
    columns["tcp.srcport"].append(sport if proto == 6 else None)
    columns["tcp.dstport"].append(dport if proto == 6 else None)
    columns["tcp.flags"].append(flags if proto == 6 else None)
    columns["udp.srcport"].append(sport if proto == 17 else None)
    columns["udp.dstport"].append(dport if proto == 17 else None)
    columns["icmp.type"].append(_int(event.get("icmp_type")) if proto in (1, 58) else None)
    columns["flow.app_proto"].append(str(event.get("app_proto")) if event.get("app_proto") else None)
    for key in ("pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient"):
        columns[f"flow.{key}"].append(_int(flow.get(key)))
    columns["flow.state"].append(str(flow.get("state")) if flow.get("state") else None)


def summarize_flows(table: pa.Table, *, top: int = 10) -> dict:
    """Top talkers and ports of a flow table, by flows and by packets."""
    rows = table.to_pylist()
    packets = Counter()
    flows = Counter()
    dst_ports = Counter()
    protocols = Counter()
    for row in rows:
        pkts = (row["flow.pkts_toserver"] or 0) + (row["flow.pkts_toclient"] or 0)
        flows[row["ip.src"]] += 1
        packets[row["ip.src"]] += pkts
        port = row["tcp.dstport"] if row["tcp.dstport"] is not None else row["udp.dstport"]
        if port is not None:
            dst_ports[port] += 1
        protocols[{6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(row["ip.proto"], "other")] += 1
    times = [r["ts"] for r in rows if r["ts"] is not None]
    return {
        "flows": len(rows),
        "packets": sum(packets.values()),
        "bytes": sum((r["flow.bytes_toserver"] or 0) + (r["flow.bytes_toclient"] or 0) for r in rows),
        "start": min(times) if times else None,
        "end": max(times) if times else None,
        "protocols": dict(protocols.most_common()),
        "top_sources": [{"ip": ip, "flows": n, "packets": packets[ip]} for ip, n in flows.most_common(top)],
        "top_dst_ports": [{"port": p, "flows": n} for p, n in dst_ports.most_common(top)],
    }

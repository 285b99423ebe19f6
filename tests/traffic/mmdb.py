"""A tiny MaxMind DB (.mmdb, format 2.0) writer for the tests: IPv4 networks to records.

Only what a GeoLite2/DB-IP country or ASN file needs: maps, UTF-8 strings, unsigned
integers, arrays; a 24-bit-record search tree over IPv4.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path


class U16(int):
    pass


class U64(int):
    pass


def _ctrl(kind: int, size: int) -> bytes:
    assert size < 29 + 256
    small, extra = (size, b"") if size < 29 else (29, bytes([size - 29]))
    if kind <= 7:
        return bytes([(kind << 5) | small]) + extra
    return bytes([small, kind - 7]) + extra  # extended type


def _uint(kind: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _ctrl(kind, len(raw)) + raw


def encode(value) -> bytes:
    if isinstance(value, dict):
        return _ctrl(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, U16):
        return _uint(5, int(value))
    if isinstance(value, U64):
        return _uint(9, int(value))
    if isinstance(value, int):
        return _uint(6, value)
    raise TypeError(type(value))


def write_mmdb(path: Path, networks: dict[str, dict], *, database_type: str = "GeoLite2-Country") -> Path:
    data, offsets = b"", {}
    for net, record in networks.items():
        offsets[net] = len(data)
        data += encode(record)
    nodes: list[list] = [[None, None]]
    for net in networks:
        n = ipaddress.ip_network(net)
        bits, node = int(n.network_address), 0
        for i in range(n.prefixlen):
            b = (bits >> (31 - i)) & 1
            if i == n.prefixlen - 1:
                nodes[node][b] = ("data", net)
            else:
                child = nodes[node][b]
                if child is None:
                    nodes.append([None, None])
                    nodes[node][b] = ("node", len(nodes) - 1)
                node = nodes[node][b][1]
    count = len(nodes)

    def value(child) -> int:
        if child is None:
            return count
        if child[0] == "node":
            return child[1]
        return count + 16 + offsets[child[1]]

    tree = b"".join(value(a).to_bytes(3, "big") + value(b).to_bytes(3, "big") for a, b in nodes)
    meta = {
        "node_count": count,
        "record_size": U16(24),
        "ip_version": U16(4),
        "database_type": database_type,
        "languages": ["en"],
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(1_700_000_000),
        "description": {"en": "shieldwall test database"},
    }
    path.write_bytes(tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + encode(meta))
    return path


__all__ = ["write_mmdb", "struct"]

"""The fields the language knows, their types and the OSI layer that can see them.

Names and types follow Cloudflare's Rules language (and Wireshark's display filters,
which it is based on). The layer decides where a rule can be enforced: an L7 field is
invisible to a packet filter, an L3/L4-only field is invisible to the WAF.
"""

from __future__ import annotations

from dataclasses import dataclass

# Type names as they appear in error messages.
IP = "IP address"
INT = "Integer"
STR = "String"
BOOL = "Boolean"
ARRAY_STR = "Array<String>"
ARRAY_BOOL = "Array<Boolean>"
MAP_ARRAY_STR = "Map<Array<String>>"

L3, L4, L7 = "L3", "L4", "L7"
LAYER_ORDER = {L3: 3, L4: 4, L7: 7}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    layer: str


_SPECS = [
    ("ip.src", IP, L3),
    ("ip.dst", IP, L3),
    ("ip.proto", INT, L3),
    ("ip.len", INT, L3),
    ("ip.ttl", INT, L3),
    ("ip.src.asnum", INT, L3),
    ("ip.src.country", STR, L3),
    ("icmp.type", INT, L3),
    ("tcp.srcport", INT, L4),
    ("tcp.dstport", INT, L4),
    ("tcp.flags", INT, L4),
    ("udp.srcport", INT, L4),
    ("udp.dstport", INT, L4),
    ("http.host", STR, L7),
    ("http.request.method", STR, L7),
    ("http.request.uri.path", STR, L7),
    ("http.request.uri.query", STR, L7),
    ("http.user_agent", STR, L7),
    ("http.cookie", STR, L7),
    ("http.request.headers", MAP_ARRAY_STR, L7),
    ("http.request.headers.names", ARRAY_STR, L7),
    ("http.request.version", STR, L7),
    ("cf.bot_management.ja3_hash", STR, L7),
    ("cf.bot_management.ja4", STR, L7),
]

# TCP flag booleans and their bit in the flags byte (RFC 793 + RFC 3168).
TCP_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20, "ece": 0x40, "cwr": 0x80}
for _flag in TCP_FLAG_BITS:
    _SPECS.append((f"tcp.flags.{_flag}", BOOL, L4))

FIELDS: dict[str, FieldSpec] = {name: FieldSpec(name, type_, layer) for name, type_, layer in _SPECS}

# Cloudflare's Magic Firewall spells ip.proto as a name ("tcp"); Wireshark as a number.
# Both are accepted; the evaluator and packet-filter compilers map names to numbers.
PROTOCOL_NUMBERS = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "sctp": 132,
}

# Which transport protocol a field needs to be present at all (the evaluator's null).
FIELD_PROTOCOL = {name: 6 for name in FIELDS if name.startswith("tcp.")}
FIELD_PROTOCOL.update({"udp.srcport": 17, "udp.dstport": 17, "icmp.type": 1})


def article(type_name: str) -> str:
    """'an Integer', 'a String': error messages read as English."""
    return ("an " if type_name[0] in "AEIOU" else "a ") + type_name

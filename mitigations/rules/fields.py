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
ARRAY_INT = "Array<Integer>"
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
    ("icmp.code", INT, L3),
    ("ip.hdr_len", INT, L3),
    # IPv4 header flags (Wireshark's names); absent for IPv6 packets.
    ("ip.flags.rb", BOOL, L3),
    ("ip.flags.df", BOOL, L3),
    ("ip.flags.mf", BOOL, L3),
    # Deprecated spellings Cloudflare still accepts (docs examples use them).
    ("ip.geoip.asnum", INT, L3),
    ("ip.geoip.country", STR, L3),
    ("ip.src.continent", STR, L3),
    ("ip.dst.country", STR, L3),
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
    ("cf.bot_management.score", INT, L7),
    ("cf.bot_management.verified_bot", BOOL, L7),
    ("cf.bot_management.static_resource", BOOL, L7),
    ("cf.client.bot", BOOL, L7),
    ("cf.threat_score", INT, L7),
    ("cf.waf.score", INT, L7),
    ("http.referer", STR, L7),
    ("http.x_forwarded_for", STR, L7),
    ("http.request.uri", STR, L7),
    ("http.request.full_uri", STR, L7),
    ("http.request.uri.path.extension", STR, L7),
    ("http.request.uri.args", MAP_ARRAY_STR, L7),
    ("http.request.uri.args.names", ARRAY_STR, L7),
    ("http.request.cookies", MAP_ARRAY_STR, L7),
    ("http.request.headers.values", ARRAY_STR, L7),
    ("http.request.accepted_languages", ARRAY_STR, L7),
    ("http.request.body.raw", STR, L7),
    ("http.request.body.form.values", ARRAY_STR, L7),
    ("http.request.timestamp.sec", INT, L7),
    ("ssl", BOOL, L7),
]

# TCP flag booleans and their bit in the flags byte (RFC 793 + RFC 3168).
TCP_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20, "ece": 0x40, "cwr": 0x80}
# Magic Firewall spells three flags in full (tcp.flags.push, .reset, .ecn); same bits.
TCP_FLAG_ALIASES = {"push": "psh", "reset": "rst", "ecn": "ece"}
TCP_FLAG_BITS.update({alias: TCP_FLAG_BITS[flag] for alias, flag in TCP_FLAG_ALIASES.items()})
for _flag in TCP_FLAG_BITS:
    _SPECS.append((f"tcp.flags.{_flag}", BOOL, L4))

FIELDS: dict[str, FieldSpec] = {name: FieldSpec(name, type_, layer) for name, type_, layer in _SPECS}


# The values an Integer field can hold (both ends included): a literal outside them is refused at
# parse, so `tcp.dstport eq 65536` never reaches nft (which rejects it) or Cloudflare.
# ``what`` names the value in the parser's message.
@dataclass(frozen=True)
class ValueRange:
    low: int
    high: int
    what: str

    def __str__(self) -> str:
        return f"{self.low} to {self.high}"


_PORT = ValueRange(0, 65535, "a port number")
_SCORE = ValueRange(0, 100, "a score")
VALUE_RANGES: dict[str, ValueRange] = {
    "ip.proto": ValueRange(0, 255, "an IP protocol number"),
    "ip.len": ValueRange(0, 65535, "a packet length in bytes"),
    "ip.ttl": ValueRange(0, 255, "a time to live"),
    "ip.hdr_len": ValueRange(0, 60, "an IPv4 header length in bytes"),
    "ip.src.asnum": ValueRange(0, 2**32 - 1, "an AS number"),
    "ip.geoip.asnum": ValueRange(0, 2**32 - 1, "an AS number"),
    "icmp.type": ValueRange(0, 255, "an ICMP type"),
    "icmp.code": ValueRange(0, 255, "an ICMP code"),
    "tcp.srcport": _PORT,
    "tcp.dstport": _PORT,
    "udp.srcport": _PORT,
    "udp.dstport": _PORT,
    "tcp.flags": ValueRange(0, 255, "the TCP flags byte"),
    "cf.bot_management.score": _SCORE,
    "cf.threat_score": _SCORE,
    "cf.waf.score": _SCORE,
}
# The values real packets carry, where narrower than what a literal may say: the coverage
# analysis (coverage.py) weighs a rule over these (an IPv4 packet is at least 20 bytes, and
# practically never above a 1,500-byte MTU).
PACKET_RANGES: dict[str, ValueRange] = {
    **VALUE_RANGES,
    "ip.len": ValueRange(20, 1500, "a packet length in bytes"),
    "ip.hdr_len": ValueRange(20, 60, "an IPv4 header length in bytes"),
}

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
FIELD_PROTOCOL.update({"udp.srcport": 17, "udp.dstport": 17, "icmp.type": 1, "icmp.code": 1})

# Fields that exist only in IPv4 packets (ICMP here means ICMPv4).
FIELD_FAMILY = {"icmp.type": 4, "icmp.code": 4, "ip.hdr_len": 4, "ip.flags.rb": 4, "ip.flags.df": 4, "ip.flags.mf": 4}

# Bit of each IPv4 flag in the 16-bit flags+fragment-offset word (RFC 791).
IP_FLAG_BITS = {"rb": 0x8000, "df": 0x4000, "mf": 0x2000}

# Managed IP lists Cloudflare keeps (``$cf.<name>``): the edge resolves them, no one else can.
MANAGED_LISTS = frozenset({"cf.open_proxies", "cf.anonymizer", "cf.vpn", "cf.malware", "cf.botnetcc"})

# Protocol headers bit_slice() can read, and the packets that have them.
BIT_SLICE_PROTOCOLS = {"ip": None, "tcp": 6, "udp": 17, "icmp": 1}


def article(type_name: str) -> str:
    """'an Integer', 'a String': error messages read as English."""
    return ("an " if type_name[0] in "AEIOU" else "a ") + type_name

"""Parser, printer and type checker: operators, precedence, values, error positions."""

import ipaddress

import pytest

from mitigations.rules import RuleError, parse
from mitigations.rules.ast import IP, Call, Compare, FieldRef, Int, ListRef, Logical, Not, Range, SetLit, Str

A = 'http.host eq "a"'
B = 'http.host eq "b"'
C = 'http.host eq "c"'


def cmp(value: str) -> Compare:
    return Compare(FieldRef("http.host"), "eq", Str(value))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("tcp.dstport eq 80", "tcp.dstport eq 80"),
        ("tcp.dstport == 80", "tcp.dstport eq 80"),
        ("tcp.dstport != 80", "tcp.dstport ne 80"),
        ("ip.len < 60", "ip.len lt 60"),
        ("ip.len <= 60", "ip.len le 60"),
        ("ip.len > 60", "ip.len gt 60"),
        ("ip.len >= 60", "ip.len ge 60"),
        ("ip.ttl lt 3 && ip.ttl gt 1", "ip.ttl lt 3 and ip.ttl gt 1"),
        ('http.user_agent contains "curl"', 'http.user_agent contains "curl"'),
        ('http.request.uri.path ~ "^/wp-"', 'http.request.uri.path matches "^/wp-"'),
        ('http.host wildcard "*.example.com"', 'http.host wildcard "*.example.com"'),
        ('http.host strict  wildcard "*.Example.com"', 'http.host strict wildcard "*.Example.com"'),
        ('http.request.method in {"GET" "POST"}', 'http.request.method in {"GET" "POST"}'),
        ("ip.src in {1.2.3.0/24 10.0.0.1}", "ip.src in {1.2.3.0/24 10.0.0.1}"),
        ("ip.src in { 2001:DB8::/32  ::1 }", "ip.src in {2001:db8::/32 ::1}"),
        ("tcp.dstport in {80 443 8000..8999}", "tcp.dstport in {80 443 8000..8999}"),
        ("ip.src in $blocklist", "ip.src in $blocklist"),
        ("ip.src.asnum in $bad_asns", "ip.src.asnum in $bad_asns"),
        ("tcp.flags.syn", "tcp.flags.syn"),
        ("!tcp.flags.ack", "not tcp.flags.ack"),
        ("tcp.flags.syn ^^ tcp.flags.ack || tcp.flags.rst", "tcp.flags.syn xor tcp.flags.ack or tcp.flags.rst"),
        (
            'any(http.request.headers.names[*] eq "accept-language")',
            'any(http.request.headers.names[*] eq "accept-language")',
        ),
        ('all(http.request.headers["accept"][*] ne "")', 'all(http.request.headers["accept"][*] ne "")'),
        ('http.request.headers["user-agent"][0] eq "x"', 'http.request.headers["user-agent"][0] eq "x"'),
        ('lower(http.user_agent) contains "bot"', 'lower(http.user_agent) contains "bot"'),
        ("len(http.cookie) gt 4000", "len(http.cookie) gt 4000"),
        ("len(http.request.headers.names) gt 30", "len(http.request.headers.names) gt 30"),
        ('starts_with(http.request.uri.path, "/api")', 'starts_with(http.request.uri.path, "/api")'),
        ('ends_with(http.request.uri.path, ".php")', 'ends_with(http.request.uri.path, ".php")'),
        ('any(lower(http.request.headers.names[*])[*] eq "x")', 'any(lower(http.request.headers.names[*])[*] eq "x")'),
        (
            'any(starts_with(http.request.headers.names[*], "x-"))',
            'any(starts_with(http.request.headers.names[*], "x-"))',
        ),
        ('http.request.uri.path matches r"^/a\\d+$"', 'http.request.uri.path matches r"^/a\\d+$"'),
        ('http.user_agent eq r#"say "hi""#', 'http.user_agent eq r#"say "hi""#'),
        ('http.user_agent eq "a\\"b\\\\c\\x41"', 'http.user_agent eq "a\\"b\\\\cA"'),
        ('ip.proto eq "udp"', 'ip.proto eq "udp"'),
        ('ip.src.country in {"CN" "RU"}', 'ip.src.country in {"CN" "RU"}'),
        ('cf.bot_management.ja3_hash eq "abc"', 'cf.bot_management.ja3_hash eq "abc"'),
        ("((tcp.flags.syn))", "tcp.flags.syn"),
    ],
)
def test_parses_and_prints_canonically(text, canonical):
    rule = parse(text)
    assert rule.to_text() == canonical
    assert parse(canonical).ast == rule.ast


def test_precedence_not_and_xor_or():
    a, b, c = cmp("a"), cmp("b"), cmp("c")
    assert parse(f"{A} or {B} and {C}").ast == Logical("or", (a, Logical("and", (b, c))))
    assert parse(f"{A} and {B} or {C}").ast == Logical("or", (Logical("and", (a, b)), c))
    assert parse(f"{A} xor {B} or {C}").ast == Logical("or", (Logical("xor", (a, b)), c))
    assert parse(f"{A} and {B} xor {C}").ast == Logical("xor", (Logical("and", (a, b)), c))
    assert parse(f"not {A} and {B}").ast == Logical("and", (Not(a), b))
    assert parse(f"not ({A} and {B})").ast == Not(Logical("and", (a, b)))
    assert parse(f"{A} and {B} and {C}").ast == Logical("and", (a, b, c))


def test_parentheses_are_kept_only_where_needed():
    assert parse(f"({A} or {B}) and {C}").to_text() == f"({A} or {B}) and {C}"
    assert parse(f"({A} and {B}) or {C}").to_text() == f"{A} and {B} or {C}"
    assert parse(f"({A} and {B}) and {C}").to_text() == f"({A} and {B}) and {C}"


def test_values():
    rule = parse("ip.src in {10.0.0.0/8 ::1} and tcp.dstport in {22 1000..2000} and ip.dst in $l")
    first, second, third = rule.ast.items
    assert first.right == SetLit((IP(ipaddress.ip_network("10.0.0.0/8")), IP(ipaddress.ip_network("::1/128"))))
    assert second.right == SetLit((Int(22), Range(1000, 2000)))
    assert third.right == ListRef("l")
    assert rule.lists == {"l"}
    assert parse('http.host eq r"a\\b"').ast.right == Str("a\\b", raw=True)
    call = parse('any(http.request.headers.names[*] eq "x")').ast
    assert isinstance(call, Call) and call.args[0].left == FieldRef("http.request.headers.names", index="*")


@pytest.mark.parametrize(
    ("text", "layer", "fields"),
    [
        ("ip.src eq 1.2.3.4", "L3", {"ip.src"}),
        ("ip.src eq 1.2.3.4 and tcp.flags.syn", "L4", {"ip.src", "tcp.flags.syn"}),
        ('udp.dstport eq 53 or http.host eq "x"', "L7", {"udp.dstport", "http.host"}),
        ('http.request.headers["x"][0] eq "y"', "L7", {"http.request.headers"}),
    ],
)
def test_layer_and_fields(text, layer, fields):
    rule = parse(text)
    assert rule.layer == layer
    assert rule.fields == fields


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ('tcp.dstport eq "80"', 15, "tcp.dstport is an Integer, cannot compare with a String"),
        ('ip.src eq "1.2.3.4"', 10, "ip.src is an IP address, cannot compare with a String"),
        ("http.host eq 80", 13, "http.host is a String, cannot compare with an Integer"),
        ('tcp.dstport in {80 "x"}', 19, "cannot compare with a String"),
        ("ip.src eq 10.0.0.0/8", 10, "use 'in' for a network"),
        ("ip.src in {10.0.0.1/8}", 11, "host bits set: did you mean 10.0.0.0/8?"),
        ("ip.src lt 1.2.3.4", 7, "lt does not apply to ip.src"),
        ('tcp.dstport contains "8"', 12, "contains does not apply"),
        ("tcp.flags.syn eq 1", 14, "tcp.flags.syn is a Boolean"),
        ('http.request.headers.names eq "x"', 0, "any(http.request.headers.names[*] eq"),
        ('http.request.headers.names[*] eq "x"', 0, "must be inside any() or all()"),
        ("tcp.dstport", 11, "expected a comparison operator"),
        ("lower(http.host)", 16, "expected a comparison operator"),
        ('starts_with(http.request.headers.names[*], "x")', 0, "must be inside any() or all()"),
        ("tcp.dstprt eq 80", 0, "unknown field 'tcp.dstprt' (did you mean tcp.dstport?)"),
        ("tcp.dstport eq", 14, "expected a value"),
        ("tcp.dstport 80", 12, "expected a comparison operator"),
        ("tcp.dstport eq 80 and", 21, "expected a field, a function or '('"),
        ("tcp.dstport eq 80 tcp.flags.syn", 18, "expected 'and', 'or', 'xor' or end of expression"),
        ("(tcp.flags.syn", 14, "expected ')' to close the '(' at position 0"),
        ('http.host eq "abc', 17, "expected '\"' to close the string opened at position 13"),
        ('http.host eq "a\\d"', 15, "after a backslash"),
        ("tcp.dstport in {80 443", 22, "expected '}' to close the set opened at position 15"),
        ("tcp.dstport in {}", 15, "at least one value"),
        ("tcp.dstport in {80,443}", 18, "expected a space or '}'"),
        ("tcp.dstport eq 80..90", 15, "only allowed inside a set"),
        ("tcp.dstport in {90..80}", 16, "low <= high"),
        ("tcp.dstport eq {80}", 15, "use 'in' for a set"),
        ("tcp.dstport in 80", 15, "expected a set {...} or a $list"),
        ('http.request.headers["User-Agent"][0] eq "x"', 21, "header names are lowercase"),
        ("http.request.headers eq 1", 20, "expected a header name"),
        ('http.request.uri.path matches "(a"', 30, "expected a valid regular expression"),
        ('http.request.uri.path matches "(?=a)"', 30, "no look-around"),
        ('lower(tcp.dstport) eq "x"', 6, "lower() expects a String"),
        ("any(tcp.flags.syn)", 4, "any() expects an element-wise test"),
        ('ip.proto eq "tcpp"', 12, "expected a protocol number or one of"),
        ("and", 0, "found keyword 'and'"),
        ("", 0, "expected an expression"),
        ("ip.src eq 1.2.3", 10, "expected a value"),
        ("ip.src eq 1.2.3.999", 10, "expected an IP address or CIDR network"),
        ("tcp.dstport eq 99999999999999999999", 15, "expected a value"),
    ],
)
def test_errors_name_the_position(text, position, message):
    with pytest.raises(RuleError) as info:
        parse(text)
    assert info.value.position == position, str(info.value)
    assert message in info.value.message
    assert str(info.value).startswith(f"position {position}: ")


def test_exact_message_for_port_compared_with_string():
    with pytest.raises(RuleError, match=r"^position 15: tcp.dstport is an Integer, cannot compare with a String$"):
        parse('tcp.dstport eq "80"')


def test_nesting_depth_is_limited_with_a_clear_error():
    with pytest.raises(RuleError, match="nested deeper than 64 levels"):
        parse("(" * 5000 + "tcp.flags.syn" + ")" * 5000)
    with pytest.raises(RuleError, match="nested deeper"):
        parse("not " * 3000 + "tcp.flags.syn")
    assert parse("(" * 60 + "tcp.flags.syn" + ")" * 60).to_text() == "tcp.flags.syn"


def test_length_is_limited():
    with pytest.raises(RuleError, match="longer than"):
        parse("tcp.flags.syn or " * 2000 + "tcp.flags.syn")


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("tcp.dstport eq 65536", 15, "tcp.dstport is a port number, 0 to 65535: 65536 is out of range"),
        ("udp.srcport in {53 1024..65536}", 19, "udp.srcport is a port number, 0 to 65535: 65536 is out of range"),
        ("ip.ttl gt 256", 10, "ip.ttl is a time to live, 0 to 255: 256 is out of range"),
        ("ip.len eq 65536", 10, "ip.len is a packet length in bytes, 0 to 65535: 65536 is out of range"),
        ("tcp.flags eq 0x100", 13, "tcp.flags is the TCP flags byte, 0 to 255: 256 is out of range"),
        ("icmp.type eq 300", 13, "icmp.type is an ICMP type, 0 to 255: 300 is out of range"),
        ("icmp.code in {0 256}", 16, "icmp.code is an ICMP code, 0 to 255: 256 is out of range"),
        ("ip.proto eq 256", 12, "ip.proto is an IP protocol number, 0 to 255: 256 is out of range"),
        ("ip.src.asnum eq 4294967296", 16, "ip.src.asnum is an AS number, 0 to 4294967295"),
        ("ip.src in {10.0.0.0/33}", 11, "a prefix length is /0 to /32 for an IPv4 network, /33 is out of range"),
        ("ip.dst in {2001:db8::/129}", 11, "a prefix length is /0 to /128 for an IPv6 network, /129 is out of range"),
    ],
)
def test_values_outside_what_the_field_holds_are_refused_naming_field_value_and_range(text, position, message):
    with pytest.raises(RuleError) as info:
        parse(text)
    assert info.value.position == position, str(info.value)
    assert message in info.value.message


def test_the_ends_of_each_range_are_accepted():
    for text in ("tcp.dstport in {0 65535}", "ip.ttl in {0..255}", "tcp.flags eq 0xff", "ip.src in {0.0.0.0/0}"):
        assert parse(text).to_text()


def test_an_out_of_range_port_never_reaches_a_compiler():
    from mitigations.rules import compile

    for target in ("nftables", "iptables", "cloudflare"):
        with pytest.raises(RuleError, match="65536 is out of range"):
            compile("ip.dst in {203.0.113.0/24} and tcp.dstport eq 65536", target)

"""Compilers: exact output for a few rules, refusals, and acceptance by the real tools."""

import pytest

from mitigations.rules import (
    CloudflareRequest,
    CompileError,
    compile,
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

from .peers import iptables_check, nft_check

HEAD = "table inet shieldwall {\n"
CHAIN = "\tchain input {\n\t\ttype filter hook input priority -10; policy accept;\n"


def test_nftables_or_over_one_field_becomes_a_set():
    out = compile_nftables("tcp.dstport eq 80 or tcp.dstport in {443 8000..8999}", name="sw-1")
    assert out == HEAD + CHAIN + '\t\ttcp dport { 80, 443, 8000-8999 } counter drop comment "sw-1"\n\t}\n}\n'


def test_nftables_not_keeps_absent_field_semantics():
    out = compile_nftables("not tcp.dstport eq 80 and ip.src eq 192.0.2.1", name="sw-2")
    assert out == HEAD + CHAIN + (
        '\t\tmeta l4proto != tcp ip saddr 192.0.2.1 counter drop comment "sw-2"\n'
        '\t\ttcp dport != 80 ip saddr 192.0.2.1 counter drop comment "sw-2"\n'
        "\t}\n}\n"
    )


def test_nftables_rate_limit_and_flags():
    out = compile_nftables(
        "tcp.flags.syn and not tcp.flags.ack", name="sw-3", rate={"requests": 100, "unit": "second", "burst": 20}
    )
    assert (
        "tcp flags & syn == syn tcp flags & ack != ack limit rate over 100/second burst 20 packets counter drop "
        'comment "sw-3"' in out
    )


def test_nftables_list_becomes_named_set_with_timeout():
    out = compile_nftables("ip.src in $bad", name="sw-4", lists={"bad": ["198.51.100.0/24"]}, timeout=600)
    assert "\tset sw-4-bad-v4 {\n\t\ttype ipv4_addr; flags interval, timeout;\n\t\ttimeout 600s;\n" in out
    assert 'ip saddr @sw-4-bad-v4 counter drop comment "sw-4"' in out


def test_nftables_ip_list_elements_have_their_own_timeouts():
    out = compile_nftables_ip_list("sw-5", [("203.0.113.7", 3600), ("2001:db8::/48", None)], "drop")
    assert "elements = { 203.0.113.7 timeout 3600s }" in out
    assert "elements = { 2001:db8::/48 }" in out
    assert 'ip6 saddr @sw-5-v6 counter drop comment "sw-5"' in out


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('http.user_agent contains "curl"', "nftables cannot see http.user_agent: use the cloudflare target"),
        ('ip.src.country eq "CN"', "resolve it to a CIDR $list first"),
        ('starts_with(http.host, "a")', "nftables cannot evaluate starts_with()"),
        ("ip.src in $missing", "list $missing was not provided"),
    ],
)
def test_nftables_refusals(text, reason):
    with pytest.raises(CompileError) as info:
        compile_nftables(text)
    assert reason in str(info.value)
    assert info.value.target == "nftables"


def test_nftables_refuses_a_clause_not_the_whole_rule_silently():
    with pytest.raises(CompileError, match='cannot compile `http.host eq "x"`'):
        compile_nftables('tcp.dstport eq 80 and http.host eq "x"')


def test_iptables_script_shape():
    script = compile_iptables("tcp.dstport in {80 443} and ip.src in {198.51.100.0/24 203.0.113.0/24}", name="sw-6")
    assert script.rules == (
        "*filter\n:SHIELDWALL - [0:0]\n"
        "-A SHIELDWALL -p tcp -m multiport --dports 80,443 -m set --match-set sw-6-src0-4 src "
        '-m comment --comment "sw-6" -j DROP\n'
        "COMMIT\n"
    )
    assert script.ipset == (
        "create sw-6-src0-4 hash:net family inet -exist\n"
        "add sw-6-src0-4 198.51.100.0/24 -exist\nadd sw-6-src0-4 203.0.113.0/24 -exist\n"
    )
    assert script.rules6 == "*filter\n:SHIELDWALL - [0:0]\nCOMMIT\n"  # IPv4-only rule


def test_iptables_hashlimit_and_flags():
    script = compile_iptables(
        "tcp.flags.syn and not tcp.flags.ack",
        name="sw-7",
        rate={"requests": 50, "unit": "second", "burst": 10, "per_source": True},
    )
    assert (
        "-A SHIELDWALL -p tcp --tcp-flags SYN,ACK SYN -m hashlimit --hashlimit-above 50/sec --hashlimit-burst 10 "
        '--hashlimit-mode srcip --hashlimit-name sw-7 -m comment --comment "sw-7" -j DROP\n' in script.rules
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tcp.flags eq 2", "ignores ECE/CWR"),
        ("tcp.flags.ece", "no ECE flag"),
        ("not tcp.dstport eq 80 and not udp.dstport eq 53", "only one protocol"),
        ("ip.proto lt 10", "-p matches one protocol"),
        ("tcp.dstport in {1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16}", "at most 15 ports"),
        ('http.host eq "x"', "iptables cannot see http.host"),
    ],
)
def test_iptables_refusals(text, reason):
    with pytest.raises(CompileError, match=reason.replace("(", r"\(")):
        compile_iptables(text)


def test_cloudflare_waf_rule():
    rule = parse('http.request.uri.path eq "/login" and ip.src in {198.51.100.0/24}')
    request = compile_waf_rule(rule, "managed_challenge", zone_id="z1", description="sw-8")
    assert request == CloudflareRequest(
        "PUT",
        "/zones/z1/rulesets/phases/http_request_firewall_custom/entrypoint",
        {
            "rules": [
                {
                    "description": "sw-8",
                    "expression": rule.to_text(),
                    "action": "managed_challenge",
                    "enabled": True,
                }
            ]
        },
    )
    added = compile_waf_rule(rule, "block", zone_id="z1", ruleset_id="r1")
    assert (added.method, added.path, added.body["action"]) == ("POST", "/zones/z1/rulesets/r1/rules", "block")


def test_cloudflare_waf_refuses_packet_fields():
    with pytest.raises(CompileError, match="ip.ttl needs the magic_firewall kind"):
        compile_waf_rule('ip.ttl lt 5 and http.host eq "x"', zone_id="z")
    with pytest.raises(CompileError, match="action must be one of"):
        compile_waf_rule('http.host eq "x"', "drop", zone_id="z")


def test_cloudflare_rate_limit():
    request = compile_rate_limit(
        'http.request.uri.path eq "/login"',
        zone_id="z",
        ruleset_id="r",
        requests_per_period=100,
        period=60,
        mitigation_timeout=600,
        characteristics=["ip.src"],
    )
    assert request.path == "/zones/z/rulesets/r/rules"
    assert request.body["ratelimit"] == {
        "characteristics": ["ip.src", "cf.colo.id"],
        "period": 60,
        "requests_per_period": 100,
        "mitigation_timeout": 600,
    }
    with pytest.raises(CompileError, match="period"):
        compile_rate_limit('http.host eq "x"', zone_id="z", requests_per_period=1, period=7, mitigation_timeout=60)


@pytest.mark.parametrize(
    ("value", "target", "canonical"),
    [
        ("203.0.113.9", "ip", "203.0.113.9"),
        ("2001:db8::1", "ip6", "2001:db8::1"),
        ("198.51.0.0/16", "ip_range", "198.51.0.0/16"),
        ("203.0.113.0/24", "ip_range", "203.0.113.0/24"),
        ("2001:db8::/48", "ip_range", "2001:db8::/48"),
        ("AS13335", "asn", "AS13335"),
        (64500, "asn", "AS64500"),
        ("CN", "country", "CN"),
    ],
)
def test_ip_access_rule_targets(value, target, canonical):
    request = compile_ip_access_rule(value, "challenge", zone_id="z", notes="sw-9")
    assert request == CloudflareRequest(
        "POST",
        "/zones/z/firewall/access_rules/rules",
        {"mode": "challenge", "configuration": {"target": target, "value": canonical}, "notes": "sw-9"},
    )


@pytest.mark.parametrize("value", ["10.0.0.0/8", "203.0.113.0/25", "2001:db8::/56", "nonsense"])
def test_ip_access_rule_refuses_other_ranges(value):
    with pytest.raises(CompileError):
        compile_ip_access_rule(value, zone_id="z")


def test_cloudflare_list():
    create, items = compile_list("bad_ips", [("198.51.100.0/24", "botnet"), "2001:db8::/48"], account_id="a")
    assert create == CloudflareRequest(
        "POST", "/accounts/a/rules/lists", {"name": "bad_ips", "kind": "ip", "description": ""}
    )
    assert items.path == "/accounts/a/rules/lists/{list_id}/items"
    assert items.body == [{"ip": "198.51.100.0/24", "comment": "botnet"}, {"ip": "2001:db8::/48"}]
    with pytest.raises(CompileError, match="must be /4 to /64"):
        compile_list("x", ["2001:db8::1"], account_id="a")
    with pytest.raises(CompileError, match="lowercase"):
        compile_list("Bad-Name", [], account_id="a")


def test_magic_firewall():
    request = compile_magic_firewall('ip.proto eq "udp" and udp.srcport eq 123 and ip.len gt 400', account_id="a")
    assert request.path == "/accounts/a/rulesets/phases/magic_transit/entrypoint"
    assert request.body["rules"][0]["expression"] == 'ip.proto eq "udp" and udp.srcport eq 123 and ip.len gt 400'
    with pytest.raises(CompileError, match="cannot see http.host"):
        compile_magic_firewall('http.host eq "x"', account_id="a")
    with pytest.raises(CompileError, match="ip.proto is a name"):
        compile_magic_firewall("ip.proto eq 17", account_id="a")


def test_compile_dispatch():
    assert compile("tcp.dstport eq 22", "nftables", name="sw-10").startswith(HEAD)
    assert compile("tcp.dstport eq 22", "iptables", name="sw-10").rules.startswith("*filter")
    assert compile('http.host eq "x"', "cloudflare", zone_id="z").body["rules"][0]["action"] == "block"
    with pytest.raises(ValueError, match="unknown target"):
        compile("tcp.dstport eq 22", "pf")


PEER_RULES = [
    ("tcp.dstport eq 80 or tcp.dstport in {443 8000..8999} or udp.dstport eq 53", {}),
    ("not tcp.dstport eq 80 and ip.src in {10.0.0.0/8 2001:db8::/32}", {}),
    ("ip.src ne 192.0.2.1 and ip.ttl lt 5", {}),
    ("tcp.flags.syn and not tcp.flags.ack and ip.len gt 1000", {"rate": {"requests": 100, "burst": 20}}),
    ("tcp.flags.syn xor tcp.flags.ack", {"rate": {"requests": 100, "burst": 20, "per_source": True}}),
    ('ip.src in $bad and icmp.type in {0 8} and ip.proto eq "icmp"', {"lists": {"bad": ["198.51.100.0/24", "::1"]}}),
    (
        "ip.dst in {192.0.2.0/24} and tcp.dstport ge 1024 and tcp.dstport le 2048",
        {"rate": {"requests": 6000, "period": 60}},
    ),
    ("ip.len in {0..60 1400..1500} and ip.ttl ge 200", {}),
    ("not (udp.srcport in {19 123 1900} or ip.src in {203.0.113.0/24 198.51.100.7})", {"action": "accept"}),
]


@pytest.mark.peer
@pytest.mark.parametrize(("text", "opts"), PEER_RULES)
def test_nft_accepts_compiled_output(text, opts):
    nft_opts = {**opts}
    result = nft_check(compile_nftables(text, name="sw-peer", **nft_opts))
    assert result.returncode == 0, result.stderr


@pytest.mark.peer
def test_nft_accepts_ip_list():
    result = nft_check(compile_nftables_ip_list("sw-list", [("198.51.100.7", 60), ("2001:db8::/48", None)], "drop"))
    assert result.returncode == 0, result.stderr


@pytest.mark.peer
@pytest.mark.parametrize(("text", "opts"), PEER_RULES)
def test_iptables_restore_and_ipset_accept_compiled_output(text, opts):
    for tool, result in iptables_check(compile_iptables(text, name="sw-peer", **opts)):
        assert result.returncode == 0, f"{tool}: {result.stderr}"


@pytest.mark.peer
def test_iptables_accepts_ip_list():
    script = compile_iptables_ip_list("sw-list", [("198.51.100.7", 60), ("2001:db8::/48", None)], "drop")
    for tool, result in iptables_check(script):
        assert result.returncode == 0, f"{tool}: {result.stderr}"

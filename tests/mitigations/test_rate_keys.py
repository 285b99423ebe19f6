"""Rate-limit keys: what a limit counts by is stated and means the same on every target, or the
target refuses it. Real packets through nftables in namespaces named h15b-*."""

from __future__ import annotations

import pytest

from mitigations import compiling
from mitigations.rules import CompileError, IptablesScript
from tests.rules.peers import iptables_check

from .test_drift_content import lab  # noqa: F401  (fixture)
from .test_enforcement import ALLOWED, BLOCKED, SCOPE, UDP_PORT

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
EXPRESSION = 'http.request.uri.path eq "/login"'


def cloudflare(key: str) -> dict:
    out = compiling.compile_for(
        "cloudflare",
        name="sw-1-abcd",
        kind="rate_limit",
        action="block",
        expression=EXPRESSION,
        value="",
        rate={"requests": 50, "period": 60, "mitigation_timeout": 600, "key": key},
        items=[],
        list_name="",
        lists={},
        options={"zone_id": ZONE},
        description="",
    )
    return out["requests"][0]["body"]["rules"][0]["ratelimit"]


def packet(target: str, key: str) -> dict:
    return compiling.compile_for(
        target,
        name="sw-1-abcd",
        kind="rate_limit",
        action="block",
        expression=f"udp.dstport eq {UDP_PORT}",
        value="",
        rate={"requests": 2, "period": 60, "key": key},
        items=[],
        list_name="",
        lists={},
        options={},
        description="",
    )


@pytest.mark.parametrize(
    ("key", "characteristics"),
    [
        ("source", ["ip.src", "cf.colo.id"]),
        ("colo", ["cf.colo.id"]),
        ("header:X-Api-Key", ['http.request.headers["x-api-key"]', "cf.colo.id"]),
        ("cookie:session", ['http.request.cookies["session"]', "cf.colo.id"]),
        ("query:user", ['http.request.uri.args["user"]', "cf.colo.id"]),
        ("ja3", ["cf.bot_management.ja3_hash", "cf.colo.id"]),
        ("ja4", ["cf.bot_management.ja4", "cf.colo.id"]),
        ("asn", ["ip.src.asnum", "cf.colo.id"]),
    ],
)
def test_cloudflare_counts_by_the_stated_characteristic(key, characteristics):
    assert cloudflare(key)["characteristics"] == characteristics


@pytest.mark.parametrize(("key", "why"), [("source24", "never per /24"), ("aggregate", "per data center")])
def test_cloudflare_refuses_keys_it_cannot_count_by(key, why):
    with pytest.raises(CompileError, match=why):
        cloudflare(key)


@pytest.mark.parametrize("target", ["nftables", "iptables"])
@pytest.mark.parametrize(
    ("key", "why"), [("header:x-api-key", "HTTP"), ("ja4", "HTTP"), ("asn", "ASN"), ("colo", "one location")]
)
def test_packet_filters_refuse_http_and_edge_keys(target, key, why):
    with pytest.raises(CompileError, match=why):
        packet(target, key)


def test_packet_filters_count_per_source_per_24_or_in_one_bucket():
    nft = {key: packet("nftables", key)["ruleset"] for key in ("source", "source24", "aggregate")}
    assert "update @sw-1-abcd-meter-v4 { ip saddr limit rate over 2/minute }" in nft["source"]
    assert "ip saddr & 255.255.255.0 limit rate over 2/minute" in nft["source24"]
    assert "ip6 saddr & ffff:ffff:ffff:: limit" in nft["source24"]
    assert "meter" not in nft["aggregate"] and "limit rate over 2/minute" in nft["aggregate"]
    ipt = {key: packet("iptables", key) for key in ("source", "source24", "aggregate")}
    assert "--hashlimit-mode srcip --hashlimit-name" in ipt["source"]["rules"]
    assert "--hashlimit-srcmask 24" in ipt["source24"]["rules"]
    assert "--hashlimit-srcmask 48" in ipt["source24"]["rules6"]
    assert "--hashlimit-mode" not in ipt["aggregate"]["rules"]
    script = IptablesScript(ipt["source24"]["rules"], ipt["source24"]["rules6"], ipt["source24"]["ipset"])
    for tool, done in iptables_check(script):
        assert done.returncode == 0, f"{tool}: {done.stderr}"


def test_per_source_and_per_24_buckets_hold_with_real_packets(lab, enforce):  # noqa: F811
    rate = {"requests": 2, "period": 60, "burst": 3}
    per_source = enforce(
        kind="rate_limit",
        expression=SCOPE + f"ip.src in {{10.231.0.8/29}} and udp.dstport eq {UDP_PORT}",
        rate={**rate, "key": "source"},
    )
    first, second = lab.arrivals(BLOCKED, "udp", 10), lab.arrivals(ALLOWED, "udp", 10)
    assert first < 10 and second < 10 and abs(first - second) <= 1  # each address has its own bucket
    from mitigations import services

    services.mitigation_rollback(mitigation=per_source, user=per_source.author)
    per_24 = enforce(
        kind="rate_limit",
        expression=SCOPE + f"ip.src in {{10.231.0.8/29}} and udp.dstport eq {UDP_PORT}",
        rate={**rate, "key": "source24"},
    )
    first, second = lab.arrivals(BLOCKED, "udp", 10), lab.arrivals(ALLOWED, "udp", 10)
    assert first < 10 and second <= 1  # both addresses are in 10.231.0.0/24: one bucket, already spent
    assert per_24.compiled["nftables"]["ruleset"].count("& 255.255.255.0") == 1

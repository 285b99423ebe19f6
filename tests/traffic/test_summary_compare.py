"""Summary on synthetic attacks, request-log parsing, and attack-vs-baseline compare
(must-show 3)."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from tests.shared import SHARED_DATA
from tests.traffic import gen
from traffic.parsers.compare import REQUEST_COLUMNS, compare, quote
from traffic.parsers.httplog import read_combined, read_log, read_logpush, summarize_log
from traffic.parsers.pcap import PcapReader, read_pcap
from traffic.parsers.summary import PcapSummarizer, summarize_pcap


def _cap(tmp_path, *streams, name="c.pcap"):
    path = tmp_path / name
    gen.write_pcap(path, gen.merge(*streams))
    return path


def test_syn_flood_and_reflection_are_named(tmp_path):
    rng = random.Random(1)
    syn = summarize_pcap(_cap(tmp_path, gen.syn_flood(3000, rng=rng), gen.tls_session(200, rng=rng)))
    assert [v["name"] for v in syn["vectors"]][:1] == ["syn_flood"]
    assert syn["tcp_flags"]["SYN"] == 3000
    mem = summarize_pcap(_cap(tmp_path, gen.reflection(3000, 11211, 1400, rng=rng), name="m.pcap"))
    assert "memcached_amplification" in {v["name"] for v in mem["vectors"]}
    assert mem["top_src_ports"][0] == {"proto": "udp", "port": 11211, "packets": 3000}


def test_normal_tls_has_no_vector(tmp_path):
    s = summarize_pcap(_cap(tmp_path, gen.tls_session(2000, rng=random.Random(2))))
    assert s["vectors"] == []
    assert s["protocols"] == {"tcp": 2000}


def test_summary_is_the_same_in_tiny_batches(tmp_path):
    rng = random.Random(3)
    path = _cap(tmp_path, gen.syn_flood(500, rng=rng), gen.reflection(300, 53, 900, rng=rng), gen.special_cases())
    acc = PcapSummarizer()
    for batch in PcapReader(path, batch_packets=13):
        acc.add(batch)
    assert acc.result() == summarize_pcap(path)


def test_summary_json_keys_and_top_source_order(tmp_path):
    path = _cap(tmp_path, gen.special_cases())
    s = summarize_pcap(path)
    for key in ("packets", "bytes", "duration_s", "protocols", "top_sources", "top_destinations", "top_src_ports"):
        assert key in s
    assert s["packets"] == 9 and s["protocols"]["non-ip"] == 1
    assert s["top_destinations"][0]["ip"] == gen.VICTIM
    assert s["per_second"][0]["bits"] > 0
    assert s["fragments"] == {"packets": 3, "non_first": 2}
    ips = [(-r["packets"], r["ip"]) for r in s["top_sources"]]
    assert ips == sorted(ips)
    assert read_pcap(path).table.column("ip.src").to_pylist()[2] == "2001:db8::1"


def test_combined_log_reads_the_real_apache_sample():
    path = SHARED_DATA / "httplogs/apache/elastic_examples_apache_logs.gz"
    if not path.exists():
        pytest.skip("apache sample absent")
    res = read_log(path)
    assert res.format == "combined" and res.errors == [] and res.table.num_rows == 10_000
    first = res.table.slice(0, 1).to_pylist()[0]
    assert first["ip.src"] == "83.149.9.216" and first["http.response.code"] == 200
    assert first["http.request.uri.path"].startswith("/presentations/") and first["http.request.headers.names"] is None
    s = summarize_log(res.table)
    assert s["requests"] == 10_000 and s["top_methods"][0]["value"] == "GET"


def test_logpush_columns_and_header_order(logpush_pair):
    attack, baseline = logpush_pair
    t = read_logpush(attack).table
    row = t.slice(0, 1).to_pylist()[0]
    assert row["http.request.headers.names"] == ["host", "user-agent", "content-type", "accept", "content-length"]
    assert row["cookie.names"] == [] and row["http.cookie"] == ""
    assert row["cf.bot_management.ja3_hash"] == gen.BOT_JA3 and row["http.request.method"] == "POST"
    s = summarize_log(read_logpush(baseline).table)
    assert s["header_orders"] and s["cookie_names"][0]["value"] == "_ga"
    assert {b["value"] for b in s["bot_score_bands"]} <= {"1 automated", "2-29 likely automated", "30-99 likely human"}


def test_compare_finds_the_login_bot(logpush_pair):
    attack, baseline = logpush_pair
    a, b = read_logpush(attack).table, read_logpush(baseline).table
    result = compare(a, b)
    best = result["signatures"][0]
    assert best["attack_coverage"] >= 0.95 and best["baseline_collateral"] <= 0.01
    ranked = [x["attribute"] for x in result["attributes"][:6]]
    assert "cf.bot_management.ja3_hash" in ranked
    path_attr = next(x for x in result["attributes"] if x["attribute"] == "http.request.uri.path")
    login = next(v for v in path_attr["values"] if v["value"] == "/login")
    assert login["attack_share"] == 1.0 and 0 < login["baseline_share"] < 0.02


def test_compare_signatures_agree_with_the_rule_evaluator(logpush_pair):
    rules = pytest.importorskip("mitigations.rules", reason="rule language (issue 6) not available yet")
    attack, baseline = logpush_pair
    a, b = read_logpush(attack).table, read_logpush(baseline).table
    for sig in compare(a, b)["signatures"]:
        rule = rules.parse(sig["expression"])
        assert rules.evaluate(rule, a).mean() == pytest.approx(sig["attack_coverage"], abs=1e-6)
        assert rules.evaluate(rule, b).mean() == pytest.approx(sig["baseline_collateral"], abs=1e-6)


def test_compare_on_packets_writes_a_port_and_length_rule(tmp_path):
    rng = random.Random(4)
    att = read_pcap(_cap(tmp_path, gen.reflection(2000, 123, 468, rng=rng), name="a.pcap")).table
    base = read_pcap(_cap(tmp_path, gen.tls_session(2000, rng=rng), name="b.pcap")).table
    best = compare(att, base)["signatures"][0]
    # The TLS baseline has no UDP at all: a UDP rule's collateral is unknown, not 0 (issue 14).
    assert best["attack_coverage"] == 1.0 and best["baseline_collateral"] is None
    assert best["collateral_unknown"] == "unknown — the baseline has no UDP"
    assert "udp.srcport eq 123" in best["expression"]


def test_hostile_values_are_quoted():
    assert quote('a"b\\c\n') == '"a\\"b\\\\c\\x0a"'
    rules = pytest.importorskip("mitigations.rules", reason="rule language (issue 6) not available yet")
    rules.parse(f"http.user_agent eq {quote(chr(34) + ' or true or ' + chr(92))}")


def test_combined_bad_lines_are_named(tmp_path):
    path = tmp_path / "access.log"
    good = '1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"'
    path.write_text("\n".join([good, "garbage", good]) + "\n")
    res = read_combined(path)
    assert res.table.num_rows == 2 and res.errors[0].startswith("line 2:")


def test_compare_reads_only_its_columns_and_gives_the_same_result(logpush_pair):
    attack, baseline = logpush_pair
    full = compare(read_logpush(attack).table, read_logpush(baseline).table)
    a = read_logpush(attack, columns=REQUEST_COLUMNS).table
    b = read_logpush(baseline, columns=REQUEST_COLUMNS).table
    assert a.schema == read_logpush(attack).table.schema
    assert a.column("ts").null_count == a.num_rows and a.column("http.request.headers").null_count == a.num_rows
    assert compare(a, b) == full
    with pytest.raises(ValueError, match="not request-log columns"):
        read_logpush(attack, columns=["http.nope"])


def test_compare_does_not_depend_on_how_the_tables_are_chunked(logpush_pair):
    attack, baseline = logpush_pair
    a, b = read_logpush(attack).table, read_logpush(baseline).table
    rechunked = pa.Table.from_batches(a.combine_chunks().to_batches(max_chunksize=997))
    assert rechunked.column(0).num_chunks > 1
    assert compare(rechunked, b) == compare(a.combine_chunks(), b.combine_chunks())


def test_logpush_keeps_duplicated_header_and_cookie_keys(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(
        '{"ClientIP":"192.0.2.1","RequestHeaders":{"Host":"a","X-A":"1","x-a":"2"},'
        '"Cookies":{"sid":"1","sid":"2"}}\n'
        '{"ClientIP":"192.0.2.2","RequestHeaders":["not", "an", "object"],"Cookies":"c=1"}\n'
        '{"ClientIP":"192.0.2.3","RequestHeaders":{"Cookie":"a=1; =2; b"},"Cookies":{}}\n'
    )
    rows = read_logpush(path).table.to_pylist()
    assert rows[0]["http.request.headers.names"] == ["host", "x-a", "x-a"]
    assert [h["value"] for h in rows[0]["http.request.headers"]] == ["a", "1", "2"]
    assert rows[0]["http.cookie"] == "sid=1; sid=2" and rows[0]["cookie.names"] == ["sid", "sid"]
    assert rows[1]["http.request.headers.names"] == [] and rows[1]["http.request.headers"] == []
    assert rows[1]["http.cookie"] == "" and rows[1]["cookie.names"] == []
    assert rows[2]["http.cookie"] == "a=1; =2; b" and rows[2]["cookie.names"] == ["a", "b"]

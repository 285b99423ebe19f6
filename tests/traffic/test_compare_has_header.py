"""The "has header" masks taken from the distinct header orders give the comparison every row's
names flattened gave (the implementation before), including on names an order cannot stand for."""

from __future__ import annotations

import orjson
import pytest

from tests.shared import shared_file
from tests.traffic import gen
from traffic.parsers import compare as compare_module
from traffic.parsers.compare import REQUEST_COLUMNS, compare
from traffic.parsers.httplog import header_order, read_combined, read_logpush


@pytest.fixture
def flattened(monkeypatch):
    """compare() as it was: every request's header names flattened into the masks."""

    def run(a, b):
        with monkeypatch.context() as m:
            m.setattr(compare_module, "_has_by_order", lambda *args: None)
            return compare(a, b)

    return run


def _read(path):
    return read_logpush(path, columns=REQUEST_COLUMNS).table


def _orders_stand_for_names(table) -> bool:
    ia, _, values = compare_module._codes(header_order(table), header_order(table.slice(0, 0)))
    return compare_module._has_by_order(table.column("http.request.headers.names"), ia, values) is not None


def test_the_login_bot_against_the_real_apache_baseline_is_compared_as_before(logpush_pair, flattened):
    attack, baseline = (_read(p) for p in logpush_pair)
    assert _orders_stand_for_names(attack) and _orders_stand_for_names(baseline)

    result = compare(attack, baseline)

    assert result == flattened(attack, baseline)
    has = next(a for a in result["attributes"] if a["attribute"] == "has header")
    assert {"cookie", "referer"} <= {v["value"] for v in has["values"]}


def test_a_bench_sized_mix_is_compared_as_before(tmp_path, flattened):
    apache = shared_file("httplogs/apache/elastic_examples_apache_logs.gz")
    attack, baseline = tmp_path / "attack.jsonl", tmp_path / "baseline.jsonl"
    gen.write_logpush_bench(attack, 60_000, apache)
    gen.write_logpush_bench(baseline, 40_000, apache, seed=5, bot_share=0.0)
    a, b = _read(attack), _read(baseline)
    assert compare(a, b) == flattened(a, b)


def test_header_names_with_a_bar_or_empty_are_flattened_and_compared_as_before(logpush_pair, tmp_path, flattened):
    attack_path, baseline_path = logpush_pair
    hostile = tmp_path / "hostile.jsonl"
    records = [orjson.loads(line) for line in attack_path.read_bytes().splitlines()[:400]]
    for i, record in enumerate(records):
        if i % 3 == 0:
            record["RequestHeaders"] = {"Host": "a", "X|Y": "1", "Accept": "*/*"}  # splits into 4, has 3
        elif i % 3 == 1:
            record["RequestHeaders"] = {"Host": "a", "X": "1", "Y": "2"}
        if i % 7 == 0:
            record["RequestHeaders"] = {"": "empty name"}
        if i % 11 == 0:
            record["RequestHeaders"] = {}
    gen.write_jsonl(hostile, records)
    a, b = _read(hostile), _read(baseline_path)
    assert not _orders_stand_for_names(a)

    result = compare(a, b)

    assert result == flattened(a, b)
    has = next(x for x in result["attributes"] if x["attribute"] == "has header")
    assert {"x|y", ""} <= {v["value"] for v in has["values"]}


def test_a_combined_log_baseline_without_headers_is_compared_as_before(logpush_pair, flattened):
    attack = _read(logpush_pair[0])
    baseline = read_combined(shared_file("httplogs/apache/elastic_examples_apache_logs.gz")).table
    assert baseline.column("http.request.headers.names").null_count == baseline.num_rows
    assert compare(attack, baseline) == flattened(attack, baseline)

"""Hostile input: random bytes and mutated captures give results or declared errors only."""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.traffic import gen
from traffic.parsers.httplog import parse_combined_lines
from traffic.parsers.pcap import PcapError, read_pcap
from traffic.parsers.summary import summarize_pcap

_SMALL = None


def _small_capture() -> bytes:
    global _SMALL
    if _SMALL is None:
        import io
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".pcap") as fh:
            rng = random.Random(5)
            gen.write_pcap(fh.name, gen.merge(gen.special_cases(), gen.syn_flood(20, rng=rng)))
            _SMALL = open(fh.name, "rb").read()  # noqa: SIM115
        del io
    return _SMALL


def _check(tmp_path, data: bytes) -> None:
    path = tmp_path / "f.pcap"
    path.write_bytes(data)
    start = time.monotonic()
    try:
        res = read_pcap(path)
        assert res.table.num_rows >= 0
        summarize_pcap(path)
    except PcapError:
        pass
    assert time.monotonic() - start < 5


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_reader(tmp_path, data):
    _check(tmp_path, data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12), st.integers(0, 3000))
def test_mutated_capture_never_crashes_the_reader(tmp_path, flips, cut):
    data = bytearray(_small_capture())
    for pos, val in flips:
        data[pos % len(data)] = val
    _check(tmp_path, bytes(data[: max(24, len(data) - cut)]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_mutated_pcapng_never_crashes_the_reader(tmp_path, tail):
    f = gen.eth(gen.ipv4("192.0.2.1", "10.0.0.1", 6, gen.tcp(1, 2, gen.SYN)))
    data = gen.pcapng_bytes([(1, None)], [(0, gen.T0, f, len(f), "epb")])
    _check(tmp_path, data + tail)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=20))
def test_random_log_lines_are_kept_or_named(lines):
    res = parse_combined_lines(lines)
    nonblank = sum(1 for ln in lines if ln.strip())
    assert res.table.num_rows + min(len([e for e in res.errors if e.startswith("line ")]), 100) >= min(nonblank, 100)


def test_logpush_bad_lines_are_named_and_the_rest_kept(tmp_path):
    from traffic.parsers.httplog import read_logpush

    good = b'{"ClientIP":"192.0.2.1","ClientRequestPath":"/","EdgeStartTimestamp":"2024-01-01T00:00:00Z"}'
    path = tmp_path / "l.jsonl"
    path.write_bytes(b"\n".join([good, b"{not json", good, b'{"ClientIP": "x"', good]) + b"\n")
    res = read_logpush(path)
    assert res.table.num_rows == 3
    assert [e.split(":")[0] for e in res.errors] == ["line 2", "line 4"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_random_logpush_lines_never_crash(tmp_path, lines):
    from traffic.parsers.httplog import read_logpush

    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join(lines))
    res = read_logpush(path)
    assert res.table.num_rows <= len(lines)

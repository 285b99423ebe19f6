"""Hostile input: whatever bytes arrive, parse_delivery returns or raises ParseError, fast.

Three kinds of input: random bytes, random JSON documents, and realistic payloads with
one field replaced by a random JSON value (which reaches deep into each parser).
"""

import copy
import time
from datetime import timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.formats import FORMATS, ParseError, ParseResult, parse_delivery
from alerts.formats import examples as payloads
from alerts.formats.base import LAYERS, SEVERITIES

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(milliseconds=750),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALL_FORMATS = sorted(FORMATS)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=25,
)

BASE_PAYLOADS = {
    "cloudflare": [payloads.cloudflare_l4(), payloads.cloudflare_l7(event="END")],
    "alertmanager": [payloads.alertmanager_notification()],
    "suricata": [[payloads.suricata_alert(app_proto="http"), payloads.suricata_flow()]],
    "fastnetmon": [payloads.fastnetmon_json()],
    "crowdsec": [[payloads.crowdsec_alert()]],
    "generic": [{"title": "x", "severity": "high", "dest_ip": "192.0.2.1", "src": ["192.0.2.9"]}],
    "wazuh": [{"rule": {"level": 7, "description": "d", "groups": ["web"]}, "agent": {"id": "1"}, "data": {}}],
    "pagerduty": [
        {
            "routing_key": "R0UT1NGKEY",
            "event_action": "trigger",
            "dedup_key": "k1",
            "payload": {"summary": "s", "source": "192.0.2.1", "severity": "error", "custom_details": {"a": 1}},
        },
        {"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": "k1"},
    ],
}


def check(result: ParseResult) -> None:
    """What the ingest service relies on for every alert that comes out."""
    for alert in result.alerts:
        assert isinstance(alert.fingerprint, str) and alert.fingerprint
        assert alert.layer in LAYERS
        assert alert.severity in SEVERITIES
        assert isinstance(alert.title, str) and len(alert.title) <= 500 and "\x00" not in alert.title
        assert all(len(value) <= 2_000 and "\x00" not in value for value in alert.labels.values())
        assert alert.target_port is None or 0 <= alert.target_port <= 65_535
        for moment in (alert.event_time, alert.ended_at):
            assert moment is None or moment.utcoffset() == timedelta(0)
        for rate in (alert.pps, alert.bps, alert.rps):
            assert rate is None or rate >= 0


def run(fmt: str, body: bytes, options=None) -> None:
    try:
        result = parse_delivery(fmt, body, options)
    except ParseError as exc:
        # parse_delivery turns an unexpected exception into a ParseError as a last resort;
        # the parsers themselves must never need that net.
        assert str(exc)
        assert "bug in Shieldwall" not in str(exc), str(exc)
        return
    check(result)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@FUZZ
@given(body=st.binary(max_size=2_000))
def test_random_bytes_give_only_parse_errors(fmt, body):
    run(fmt, body)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@FUZZ
@given(value=json_values)
def test_random_json_gives_only_parse_errors(fmt, value):
    run(fmt, orjson.dumps(value))


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _paths(sub, (*prefix, index))


@st.composite
def mutated(draw, fmt):
    base = copy.deepcopy(draw(st.sampled_from(BASE_PAYLOADS[fmt])))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(base))
        path = draw(st.sampled_from(paths))
        replacement = draw(json_values)
        if not path:
            base = replacement
            continue
        parent = base
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = replacement
    return base


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@FUZZ
@given(data=st.data())
def test_realistic_payloads_with_random_fields_give_only_parse_errors(fmt, data):
    payload = data.draw(mutated(fmt))
    run(fmt, orjson.dumps(payload))


@FUZZ
@given(
    lines=st.lists(
        st.sampled_from(
            ["IP: ", "Attack type: ", "Peak attack power: ", "Total incoming traffic: ", "Network: ", ""]
        ).flatmap(lambda key: st.text(max_size=40).map(lambda rest, key=key: key + rest)),
        max_size=20,
    )
)
def test_random_fastnetmon_text_gives_only_parse_errors(lines):
    run("fastnetmon", "\n".join(lines).encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    options=st.dictionaries(st.sampled_from(["mapping", "severity_map", "defaults", "records", "lenient"]), json_values)
)
def test_random_generic_options_give_only_parse_errors(options):
    run("generic", orjson.dumps([{"title": "t", "a": {"b": [1, 2]}}]), options)


PATHOLOGICAL = [
    ("fastnetmon", b"a:" + b" " * 1_990 + b"x\n" * 2_000),
    ("fastnetmon", (b"1:" * 1_000 + b"\n") * 500),
    ("fastnetmon", (b"in_pps: 1 " * 200 + b"\n") * 500),
    ("fastnetmon", b"IP: 192.0.2.1\n" + b"IP " * 100_000),
    ("suricata", orjson.dumps({"event_type": "alert", "alert": {"signature": "dns " * 5_000 + "x"}})),
    ("cloudflare", orjson.dumps({"alert_type": "dos_attack_l4", "data": {"attack_vector": "syn " * 10_000}})),
    ("generic", orjson.dumps({"title": "t", "x": "9" * 50_000})),
]


@pytest.mark.parametrize(("fmt", "body"), PATHOLOGICAL, ids=[f"{fmt}-{i}" for i, (fmt, _) in enumerate(PATHOLOGICAL)])
def test_pathological_inputs_stay_fast(fmt, body):
    # A generous bound that only catches catastrophic regex backtracking, not speed.
    started = time.perf_counter()
    run(fmt, body)
    assert time.perf_counter() - started < 2.0

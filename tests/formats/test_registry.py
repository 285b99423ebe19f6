"""parse_delivery: the registry, decoding, gzip and the error messages engineers see."""

import gzip
from datetime import UTC, datetime

import pytest

from alerts.formats import FORMATS, ParseError, parse_delivery
from alerts.formats import examples as payloads
from alerts.formats._common import clean, parse_rate, parse_time, to_float, to_ip


def test_registry_has_every_feed_format():
    assert {"cloudflare", "alertmanager", "suricata", "fastnetmon", "crowdsec", "generic"} <= set(FORMATS)


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(ParseError, match=r"unknown feed format 'splunk': expected one of alertmanager, cloudflare"):
        parse_delivery("splunk", b"{}")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_non_utf8_names_the_byte(fmt):
    with pytest.raises(ParseError, match=r"not UTF-8 text: byte 0xff at offset 10"):
        parse_delivery(fmt, b'{"title": \xff}')


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_empty_delivery_is_refused(fmt):
    with pytest.raises(ParseError, match="empty"):
        parse_delivery(fmt, b"  \n")


@pytest.mark.parametrize("fmt", ["cloudflare", "alertmanager", "crowdsec", "generic", "wazuh"])
def test_malformed_json_names_line_and_column(fmt):
    with pytest.raises(ParseError, match=r"not valid JSON: .*\(line 2, column \d+\)"):
        parse_delivery(fmt, b'[{"a": 1},\n {"b": }]')


def test_json_lines_error_names_the_line_number_and_keeps_the_other_lines():
    body = b"\n".join([payloads.body(payloads.suricata_alert())] * 16 + [b'{"event_type": "alert", oops}'])
    result = parse_delivery("suricata", body)
    assert len(result.alerts) == 16
    assert [r["record"] for r in result.refused] == ["line 17"]
    assert result.refused[0]["reason"].startswith("not valid JSON: ")
    with pytest.raises(ParseError, match=r"^every record was refused: line 1: not valid JSON: "):
        parse_delivery("suricata", b'{"event_type": "alert", oops}\n{"torn"')


@pytest.mark.parametrize("fmt", ["cloudflare", "alertmanager", "crowdsec"])
def test_gzip_body_is_transparent_for_every_format(fmt):
    body = {
        "cloudflare": payloads.cloudflare_l4(),
        "alertmanager": payloads.alertmanager_notification(),
        "crowdsec": [payloads.crowdsec_alert()],
    }[fmt]
    plain = parse_delivery(fmt, payloads.body(body))
    packed = parse_delivery(fmt, gzip.compress(payloads.body(body)))
    assert [a.fingerprint for a in packed.alerts] == [a.fingerprint for a in plain.alerts]


def test_gzip_bomb_is_refused():
    bomb = gzip.compress(b"\0" * 5_000_000)
    with pytest.raises(ParseError, match="expands beyond 1 MiB"):
        parse_delivery("suricata", bomb, {"max_decompressed_bytes": 1024 * 1024})


def test_corrupt_gzip_is_a_parse_error():
    with pytest.raises(ParseError, match="gzip body is corrupt"):
        parse_delivery("suricata", b"\x1f\x8b\x08\x00garbagegarbage")


def test_deep_nesting_is_a_parse_error():
    with pytest.raises(ParseError, match="nested 100000 levels deep; the limit is 64"):
        parse_delivery("generic", b"[" * 100_000 + b"]" * 100_000)


def _nested_alertmanager(depth: int) -> bytes:
    """An Alertmanager notification whose alert carries an annotation nested ``depth`` levels in all."""
    body = payloads.body(payloads.alertmanager_notification())
    # The notification itself is 3 levels deep at an alert's annotations: {"alerts": [{"annotations": ...
    inner = b'{"x":' * (depth - 4) + b"1" + b"}" * (depth - 4)
    return body.replace(b'"annotations":{', b'"annotations":{"deep":' + inner + b",", 1)


@pytest.mark.parametrize("fmt", ["alertmanager", "generic"])
def test_a_record_nested_deeper_than_the_limit_is_refused_with_the_depth(fmt):
    body = _nested_alertmanager(1_000)
    with pytest.raises(ParseError, match="JSON nested 1000 levels deep; the limit is 64"):
        parse_delivery(fmt, body)
    with pytest.raises(ParseError, match="nested 1000 levels deep; the limit is 500"):
        parse_delivery(fmt, body, {"max_json_depth": 500})
    assert len(parse_delivery("alertmanager", _nested_alertmanager(64)).alerts) == 1


def test_brackets_inside_strings_do_not_count_as_depth():
    entry = payloads.alertmanager_alert(summary="[[[[{{{{" * 100 + '\\"]]]]')
    assert len(parse_delivery("alertmanager", payloads.body(payloads.alertmanager_notification(entry))).alerts) == 1


def test_body_must_be_bytes_and_options_a_mapping():
    with pytest.raises(ParseError, match="must be bytes"):
        parse_delivery("generic", "text")  # type: ignore[arg-type]
    with pytest.raises(ParseError, match="options must be an object"):
        parse_delivery("generic", b"{}", ["x"])  # type: ignore[arg-type]
    assert parse_delivery("cloudflare", bytearray(payloads.body(payloads.cloudflare_l4()))).alerts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-03-21T19:40:06.123456+0000", datetime(2022, 3, 21, 19, 40, 6, 123456, tzinfo=UTC)),
        ("2020-10-26T12:52:58.153861334+01:00", datetime(2020, 10, 26, 11, 52, 58, 153861, tzinfo=UTC)),
        ("2006-01-02T15:04:05Z", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("2006-01-02 15:04:05", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        (1136214245, datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        ("1136214245", datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        (1136214245123, datetime(2006, 1, 2, 15, 4, 5, 123000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("year-month-dayThours:minuts:seconds+0000", None),
        (float("nan"), None),
        (True, None),
        (10**30, None),
    ],
)
def test_timestamps_become_aware_utc(value, expected):
    assert parse_time(value) == expected


def test_value_helpers_refuse_garbage():
    assert to_float("1.5M") == 1_500_000
    assert to_float(-3) is None and to_float(True) is None and to_float("pps") is None
    assert parse_rate("3.5 Gbps") == (3.5e9, "bps")
    assert parse_rate("12K rps") == (12_000, "rps")
    assert to_ip(" 2001:DB8::1 ") == "2001:db8::1"
    assert to_ip("AA.BB.CC.66") == ""
    assert clean("a\x00b" + "c" * 600, 500) == "ab" + "c" * 497 + "…"


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b'{"a": [1, {"b": "[[[[ {{{{"}]}', 3),
        (b'["a \\\\", [["x"]]]', 3),  # an escaped backslash ends before the closing quote
        (b'["\\\\\\" [[[ \\"", []]', 2),  # escaped backslash, then an escaped quote: still in the string
        (b'{"event": 1}\n[[[2]]]\n', 3),  # JSON lines: the deepest line
        (b"[" * 1_000 + b"]" * 1_000, 1_000),
    ],
)
def test_json_depth_counts_brackets_outside_strings_only(body, depth):
    from alerts.formats.limits import json_depth

    assert json_depth(body) == depth

"""Every upload is read within a fixed memory bound: long lines skipped, gzip bombs refused.

The big test generates, streamed into a temporary folder and deleted afterwards, a 1 GiB
request log whose lines include a 100 MB one and a 100 MB gzip that expands past the
decompression limit; each is read in a child process, whose peak RSS is printed in the run's
summary and must stay under MEMORY_BOUND_MB.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.shared import report_figures
from traffic.parsers.bounded import Limits, UploadRefused, bounded_copy
from traffic.parsers.httplog import LogError, read_log

MEMORY_BOUND_MB = 512
MB = 1 << 20
LINE = '203.0.113.{n} - - [02/Mar/2026:14:00:{s:02d} +0000] "GET /login?u={n} HTTP/1.1" 200 512 "-" "curl/8.5"\n'


def _lines(count: int, offset: int = 0) -> bytes:
    return "".join(LINE.format(n=(offset + i) % 250, s=i % 60) for i in range(count)).encode()


# --------------------------------------------------------------------------- small, exact


def test_an_over_long_line_is_skipped_and_counted_the_others_kept(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(_lines(3) + b"x" * 5000 + b"\n" + _lines(2, 3) + b"y" * 4097)  # the last without newline
    result = read_log(path, limits=Limits(max_line=4096))
    assert result.table.num_rows == 5
    assert result.errors[0].startswith("2 line(s) longer than 4,096 bytes skipped")
    assert "the first at line 4" in result.errors[0]


def test_a_line_split_across_chunks_is_measured_whole(tmp_path, monkeypatch):
    from traffic.parsers import bounded

    monkeypatch.setattr(bounded, "CHUNK", 7)  # every line crosses several chunks
    path = tmp_path / "access.log"
    path.write_bytes(_lines(4))
    with bounded_copy(path, Limits(max_line=200)) as copy:
        assert copy.path.read_bytes() == _lines(4) and copy.long_lines == 0
    with bounded_copy(path, Limits(max_line=50)) as copy:
        assert copy.path.read_bytes() == b"" and copy.long_lines == 4


def test_gzip_past_the_decompression_limit_is_refused(tmp_path):
    path = tmp_path / "bomb.log.gz"
    path.write_bytes(gzip.compress(b"\0" * (4 * MB)))
    with pytest.raises(LogError, match="decompresses to more than 1,048,576 bytes"):
        read_log(path, fmt="combined", limits=Limits(max_decompressed=MB))
    path.write_bytes(gzip.compress(_lines(1000)))
    assert read_log(path, limits=Limits(max_decompressed=MB)).table.num_rows == 1000


def test_a_log_past_the_size_limit_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(_lines(20_000))
    with pytest.raises(UploadRefused, match="TRAFFIC_MAX_LOG_BYTES"), bounded_copy(path, Limits(max_log=MB)):
        pass


def test_a_truncated_gzip_keeps_the_lines_before_the_break(tmp_path):
    path = tmp_path / "cut.log.gz"
    whole = gzip.compress(_lines(5000))
    path.write_bytes(whole[: len(whole) // 2])
    result = read_log(path)
    assert 0 < result.table.num_rows < 5000
    assert any("compressed stream broken" in e for e in result.errors)


def test_the_upload_path_fails_a_gzip_bomb_with_the_reason(tmp_path, settings, customer_a):
    from django.core.files.base import ContentFile

    from traffic import services
    from traffic.models import TrafficSample

    settings.MEDIA_ROOT = str(tmp_path)
    settings.TRAFFIC_MAX_DECOMPRESSED_BYTES = MB
    upload = ContentFile(gzip.compress(_lines(100) + b"\0" * (3 * MB)), name="bomb.log.gz")
    sample = services.sample_create(customer=customer_a, name="bomb.log.gz", fileobj=upload)
    sample = services.sample_parse(sample_id=sample.pk)
    assert sample.status == TrafficSample.Status.FAILED
    assert "decompresses to more than 1,048,576 bytes" in sample.errors[0]


# --------------------------------------------------------------------------- big, peak RSS

CHILD = textwrap.dedent(
    """
    import json, re, sys, time
    from traffic.parsers.httplog import LogError, read_log
    t = time.monotonic()
    try:
        r = read_log(sys.argv[1], fmt="combined")
        out = {"rows": r.table.num_rows, "errors": r.errors[:3]}
    except LogError as exc:
        out = {"refused": str(exc)}
    out["seconds"] = round(time.monotonic() - t, 1)
    # VmHWM is this process image's own peak; ru_maxrss would carry the forking pytest's over exec.
    hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())
    out["peak_rss_mb"] = round(int(hwm.group(1)) / 1024)
    print(json.dumps(out))
    """
)


def _read_in_child(path: Path) -> dict:
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], cwd=repo, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_big_log(path: Path, total: int) -> None:
    """Valid lines, a 100 MB line, then more over-long lines and valid lines up to ``total`` bytes."""
    filler = b"A" * MB
    with path.open("wb") as out:
        out.write(_lines(10_000))
        written = out.tell()
        while written < total - 2 * MB:
            for _ in range(min(100, (total - 2 * MB - written) // MB)):  # one line of up to 100 MB
                out.write(filler)
            out.write(b"\n")
            written = out.tell()
        out.write(_lines(10_000, 10_000))


def _write_gzip_bomb(path: Path, compressed_size: int) -> int:
    """Concatenated gzip members of 64 MiB of zeros each, up to ``compressed_size`` bytes; returns the expanded size."""
    member = gzip.compress(b"\0" * (64 * MB), compresslevel=9)
    count = max(1, compressed_size // len(member))
    with path.open("wb") as out:
        for _ in range(count):
            out.write(member)
    return count * 64 * MB


def test_a_1gb_log_with_a_100mb_line_and_a_gzip_bomb_stay_within_the_memory_bound(tmp_path):
    started = time.monotonic()
    log = tmp_path / "big.log"
    _write_big_log(log, 1 << 30)
    log_size = log.stat().st_size
    parsed = _read_in_child(log)
    log.unlink()  # do not keep a gigabyte around

    bomb = tmp_path / "bomb.log.gz"
    expanded = _write_gzip_bomb(bomb, 100 * MB)
    bomb_size = bomb.stat().st_size
    refused = _read_in_child(bomb)
    bomb.unlink()

    report_figures(
        "bounded uploads",
        f"{log_size / MB:,.0f} MiB log with a 100 MiB line: {parsed.get('rows')} requests parsed, "
        f"{parsed.get('errors', ['-'])[0]}; {parsed['seconds']} s, peak RSS {parsed['peak_rss_mb']} MB\n"
        f"{bomb_size / MB:,.0f} MiB gzip expanding to {expanded / (1 << 30):,.0f} GiB: "
        f"{refused.get('refused', 'NOT refused')}; {refused['seconds']} s, peak RSS {refused['peak_rss_mb']} MB\n"
        f"bound {MEMORY_BOUND_MB} MB; whole test {time.monotonic() - started:.0f} s",
    )
    assert parsed["rows"] == 20_000, parsed
    assert "longer than 1,048,576 bytes skipped" in parsed["errors"][0]
    assert parsed["peak_rss_mb"] < MEMORY_BOUND_MB, parsed
    assert "decompresses to more than" in refused["refused"], refused
    assert refused["peak_rss_mb"] < MEMORY_BOUND_MB, refused

"""Bounded reading of uploaded logs: whatever the file, the reader's memory stays fixed.

An uploaded log is copied once, streamed in 1 MiB chunks, into a plain temporary file of
lines no longer than ``max_line`` bytes before any parser sees it:

* a longer line is skipped, never buffered past the limit: it is counted and the first one's
  line number named;
* a gzip upload is decompressed as it is read, and refused once more than
  ``max_decompressed`` bytes have come out (a small bomb cannot fill memory or disk);
* the kept lines may add up to ``max_log`` bytes; a larger log is refused with that reason,
  because the columnar parse that follows holds the kept requests in memory (about twice
  their size, bench/README.md).

The parsers then read the copy: DuckDB's JSON reader and the line loops never meet a line
past the limit, so no line is ever held whole beyond ``max_line``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


class UploadRefused(ValueError):
    """The upload is past a limit (decompressed size, log size); the message says which."""


@dataclass(frozen=True)
class Limits:
    max_line: int = 1 << 20  # 1 MiB: a Logpush record with every header is a few KiB
    max_decompressed: int = 1 << 30  # 1 GiB out of a compressed upload
    max_log: int = 256 << 20  # 256 MiB of kept lines go to the columnar parse


DEFAULT_LIMITS = Limits()


@dataclass
class Copy:
    path: Path
    lines: int = 0
    kept_bytes: int = 0
    read_bytes: int = 0  # after decompression
    long_lines: int = 0
    first_long_line: int = 0
    notes: list[str] = field(default_factory=list)


def _chunks(path: Path, limits: Limits) -> Iterator[bytes]:
    """The file's bytes, decompressed when gzip, in chunks of at most CHUNK bytes."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            while chunk := raw.read(CHUNK):
                yield chunk
            return
        yield from _gunzip(raw, limits)


def _gunzip(raw, limits: Limits) -> Iterator[bytes]:
    """Decompress gzip members one bounded piece at a time (zlib, not GzipFile: a truncated stream
    still yields what came before the break, then raises ``_Truncated``)."""
    total = 0
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = False
    while data := raw.read(CHUNK):
        while data:
            fed = True
            try:
                out = d.decompress(data, CHUNK)
            except zlib.error as exc:
                raise _Truncated(str(exc)) from exc
            data = d.unconsumed_tail
            if out:
                total += len(out)
                if total > limits.max_decompressed:
                    raise UploadRefused(
                        f"decompresses to more than {limits.max_decompressed:,} bytes "
                        "(TRAFFIC_MAX_DECOMPRESSED_BYTES): refused"
                    )
                yield out
            if d.eof:  # next member (concatenated gzip), or trailing padding
                data = d.unused_data  # everything past the member's end (unconsumed_tail repeats it)
                if not data.strip(b"\0"):
                    data = b""
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                fed = bool(data)
    if fed and not d.eof:
        raise _Truncated("the compressed stream ends before its end marker")


class _Truncated(Exception):
    pass


@contextlib.contextmanager
def bounded_copy(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> Iterator[Copy]:
    """A temporary plain copy of ``path`` holding only lines within ``limits.max_line`` (see module doc)."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="shieldwall-log-") as tmp:
        out_path = Path(tmp) / (path.stem.removesuffix(".gz") if path.suffix == ".gz" else path.name)
        copy = Copy(path=out_path)
        with out_path.open("wb") as out:
            _copy_lines(path, out, copy, limits)
        if copy.long_lines:
            copy.notes.append(
                f"{copy.long_lines:,} line(s) longer than {limits.max_line:,} bytes skipped "
                f"(TRAFFIC_MAX_LINE_BYTES), the first at line {copy.first_long_line:,}"
            )
        yield copy


def _copy_lines(path: Path, out, copy: Copy, limits: Limits) -> None:
    state = _Lines(out, copy, limits)
    try:
        for chunk in _chunks(path, limits):
            copy.read_bytes += len(chunk)
            first = chunk.find(b"\n")
            if first < 0:
                state.add(chunk)
                continue
            state.add(chunk[:first])
            state.end()
            last = chunk.rfind(b"\n")
            if last > first:
                state.whole_lines(chunk[first + 1 : last + 1])
            state.add(chunk[last + 1 :])
    except _Truncated as exc:
        copy.notes.append(f"compressed stream broken after {copy.read_bytes:,} bytes: {exc}; the lines before kept")
    if state.pending or state.too_long:
        state.end()


class _Lines:
    """The line being read (at most ``max_line`` bytes of it) and the copy's counters."""

    def __init__(self, out, copy: Copy, limits: Limits) -> None:
        self.out, self.copy, self.limits = out, copy, limits
        self.pending = bytearray()
        self.too_long = False  # past the limit: its bytes are dropped until its end
        self.line_no = 1

    def add(self, piece: bytes) -> None:
        if self.too_long or not piece:
            return
        if len(self.pending) + len(piece) > self.limits.max_line:
            self.too_long = True
            self.pending = bytearray()
        else:
            self.pending += piece

    def _keep(self, size: int, lines: int) -> None:
        self.copy.kept_bytes += size
        if self.copy.kept_bytes > self.limits.max_log:
            raise UploadRefused(
                f"more than {self.limits.max_log:,} bytes of requests (TRAFFIC_MAX_LOG_BYTES): "
                "refused; split the log or sample it"
            )
        self.copy.lines += lines

    def end(self) -> None:
        if self.too_long:
            self.copy.long_lines += 1
            self.copy.first_long_line = self.copy.first_long_line or self.line_no
        else:
            self._keep(len(self.pending) + 1, 1)
            self.out.write(self.pending)
            self.out.write(b"\n")
        self.pending = bytearray()
        self.too_long = False
        self.line_no += 1

    def whole_lines(self, block: bytes) -> None:
        """Complete lines (``block`` ends with a newline): written as one block when none is too long."""
        parts = block.split(b"\n")[:-1]
        if max(map(len, parts)) <= self.limits.max_line:
            self._keep(len(block), len(parts))
            self.out.write(block)
            self.line_no += len(parts)
            return
        for part in parts:
            self.add(part)
            self.end()

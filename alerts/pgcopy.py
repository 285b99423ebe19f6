"""Rows as PostgreSQL COPY text: the write path's staging load and the benchmark's limits share it."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

# COPY's text format: a backslash starts an escape, tab and newline separate fields and rows.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_field(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).translate(_ESCAPES)


def copy_text(rows: Iterable[Sequence[Any]]) -> io.StringIO:
    """One COPY ... FROM STDIN (text format) payload, ready for ``cursor.copy_expert``."""
    buffer = io.StringIO()
    write = buffer.write
    for row in rows:
        write("\t".join([copy_field(value) for value in row]))
        write("\n")
    buffer.seek(0)
    return buffer

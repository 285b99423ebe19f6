"""How deep a JSON body nests, measured on its bytes without parsing it.

A record nested a few hundred levels deep parses (orjson allows 1,024) and then breaks
whatever walks it recursively: ``orjson.dumps`` stops at 255, the database's jsonb at its
own limits. The webhook refuses such a body before answering 202, and the parser refuses
one that is already stored, with this scan: strings are blanked by one regular expression,
the remaining brackets are counted with numpy. No recursion, no Python loop per byte.
"""

from __future__ import annotations

import re

import numpy as np

# A JSON string, escapes included; unambiguous, so no backtracking blow-up on long strings.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Every byte that is not a bracket is deleted before counting.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

DEFAULT_MAX_JSON_DEPTH = 64


def json_depth(body: bytes, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in ``body`` (JSON, or JSON lines).

    Brackets inside strings do not count. On a malformed body the figure is what its
    brackets say, which is enough to refuse it; the parser names the syntax error.
    ``stop_above`` is a shortcut: a body with no more brackets than that cannot nest
    deeper, and answers its bracket count's bound without scanning.
    """
    opening = body.count(b"[") + body.count(b"{")
    if stop_above is not None and opening <= stop_above:
        return opening
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def depth_error(body: bytes, limit: int) -> str:
    """The reason to refuse ``body`` for nesting deeper than ``limit``, or ''."""
    if limit <= 0:
        return ""
    depth = json_depth(body, stop_above=limit)
    if depth <= limit:
        return ""
    return f"JSON nested {depth} levels deep; the limit is {limit} (INGEST_MAX_JSON_DEPTH)"

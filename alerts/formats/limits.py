"""How deep a JSON body nests, measured on its bytes without parsing it.

A record nested a few hundred levels deep parses (orjson allows 1,024) and then breaks
whatever walks it recursively: ``orjson.dumps`` stops at 255, the database's jsonb at its
own limits. The webhook refuses such a body before answering 202, and the parser refuses
one that is already stored, with this scan: escapes are dropped and everything but quotes
and brackets deleted by bytes methods, then numpy counts the brackets outside strings.
No recursion, no Python loop per byte.
"""

from __future__ import annotations

# Every byte that is neither a quote nor a bracket is deleted before counting.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')

DEFAULT_MAX_JSON_DEPTH = 64


def json_depth(body: bytes, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in ``body`` (JSON, or JSON lines).

    Brackets inside strings do not count. On a malformed body the figure is what its
    brackets say, which is enough to refuse it; the parser names the syntax error.
    ``stop_above`` is a shortcut: a body with no more brackets than that cannot nest
    deeper, and answers its bracket count's bound without scanning.
    """
    import numpy as np  # here, not at start-up: every console process imports the formats

    opening = body.count(b"[") + body.count(b"{")
    if stop_above is not None and opening <= stop_above:
        return opening
    # Escapes first: pairs of backslashes, then escaped quotes (left to right, as a JSON reader
    # pairs them); what is left of the quotes then alternates opening and closing strings.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in body else body
    structure = np.frombuffer(unescaped.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    if not structure.size:
        return 0
    # An even number of quotes before a bracket: it is not in a string (a uint8 sum keeps the parity).
    outside = (np.cumsum(structure == ord('"'), dtype=np.uint8) & 1) == 0
    opens = outside & ((structure == ord("[")) | (structure == ord("{")))
    closes = outside & ((structure == ord("]")) | (structure == ord("}")))
    steps = opens.view(np.int8) - closes.view(np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def depth_error(body: bytes, limit: int) -> str:
    """The reason to refuse ``body`` for nesting deeper than ``limit``, or ''."""
    if limit <= 0:
        return ""
    depth = json_depth(body, stop_above=limit)
    if depth <= limit:
        return ""
    return f"JSON nested {depth} levels deep; the limit is {limit} (INGEST_MAX_JSON_DEPTH)"

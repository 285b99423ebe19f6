"""Errors of the rule language: one for the text, one for the compilers.

Both carry enough to point an engineer at the exact spot: a parse error has the
0-based character position, a compile error names the clause its target cannot express.
"""

from __future__ import annotations


class RuleError(ValueError):
    """The expression text is malformed or badly typed.

    ``position`` is the 0-based index of the offending character in the text, so a UI
    can put a caret under it; ``str()`` reads ``position 15: ...``.
    """

    def __init__(self, message: str, position: int) -> None:
        self.message = message
        self.position = position
        super().__init__(f"position {position}: {message}")


class CompileError(ValueError):
    """A target cannot express (part of) a rule; ``clause`` is that part, printed."""

    def __init__(self, target: str, clause: str, reason: str) -> None:
        self.target = target
        self.clause = clause
        self.reason = reason
        super().__init__(f"{target}: cannot compile `{clause}`: {reason}")

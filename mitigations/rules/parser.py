"""Parser and type checker for Shieldwall's subset of Cloudflare's Rules language.

A hand-written recursive-descent parser over the raw text (no separate token stream):
whether ``1.2.3.0/24`` or ``80..90`` is a value depends on where it stands, and
reading values in context keeps that simple. Every error is a ``RuleError`` with the
0-based position of the offending character and an "expected ..." message.

Robustness against hostile input (expressions may be pasted from attack data): the text
is capped in length, nesting (parentheses, ``not``, function calls) is capped in depth
so deep input cannot exhaust Python's stack, every loop consumes input, and regexes are
checked at parse time.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import re
from dataclasses import dataclass

from .ast import (
    IP,
    STAR,
    Call,
    Compare,
    FieldRef,
    Int,
    IPRange,
    ListRef,
    Logical,
    Node,
    Not,
    Range,
    SetLit,
    Str,
    to_text,
    walk,
)
from .errors import RuleError
from .fields import (
    ARRAY_BOOL,
    ARRAY_INT,
    ARRAY_STR,
    BIT_SLICE_PROTOCOLS,
    BOOL,
    FIELDS,
    INT,
    LAYER_ORDER,
    MAP_ARRAY_STR,
    PROTOCOL_NUMBERS,
    STR,
    VALUE_RANGES,
    article,
)
from .fields import IP as IP_T

MAX_LENGTH = 16384  # Cloudflare caps an expression at 4096; the cloudflare compiler enforces that
MAX_DEPTH = 64
MAX_REGEX_LENGTH = 1024

ENGLISH_OPS = {"eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "matches", "wildcard"}
C_OPS = [("==", "eq"), ("!=", "ne"), ("<=", "le"), (">=", "ge"), ("<", "lt"), (">", "gt"), ("~", "matches")]
FUNCTIONS = {
    "any",
    "all",
    "lower",
    "upper",
    "len",
    "starts_with",
    "ends_with",
    "url_decode",
    "concat",
    "cidr",
    "cidr6",
    "bit_slice",
}
BIT_SLICE_MAX_END = 2040  # Cloudflare: the offset cannot exceed 2,040 bits
BIT_SLICE_MAX_WIDTH = 32
KEYWORDS = ENGLISH_OPS | {"and", "or", "not", "xor", "strict"}
# Weakest first: or < xor < and (not binds tightest), as Cloudflare documents.
LEVELS = [("or", "||"), ("xor", "^^"), ("and", "&&")]
OPS_BY_TYPE = {
    IP_T: {"eq", "ne", "in"},
    INT: {"eq", "ne", "lt", "le", "gt", "ge", "in"},
    STR: {"eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "matches", "wildcard", "strict wildcard"},
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_VALUE_RUN = re.compile(r"[0-9A-Za-z:./_-]+")
_LIST_NAME = re.compile(r"(?:cf\.)?[A-Za-z0-9_]+")  # $cf.<name>: Cloudflare's managed lists
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]{1,16}")
_RANGE = re.compile(r"([0-9]{1,19})\.\.([0-9]{1,19})")
_IPV4ISH = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(?:/[0-9]+)?")
_UNSUPPORTED_REGEX = re.compile(r"\(\?<?[=!]|\\[1-9]")

Type = tuple[str, bool]  # (type name, element-wise over [*])
BOOL_T: Type = (BOOL, False)


@dataclass(frozen=True)
class Rule:
    """A parsed, type-checked rule.

    ``fields`` are the field names it reads, ``lists`` the ``$names`` it needs, and
    ``layer`` the highest OSI layer among its fields ("L3", "L4" or "L7"): where it
    can be enforced.
    """

    ast: Node
    fields: frozenset[str]
    lists: frozenset[str]
    layer: str
    source: str

    def to_text(self) -> str:
        return to_text(self.ast)

    def __str__(self) -> str:
        return self.to_text()


def parse(text: str) -> Rule:
    """Parse and type-check ``text``; raise ``RuleError`` with a position on any fault."""
    if not isinstance(text, str):
        raise TypeError("rule text must be a str")
    node = _Parser(text).parse()
    fields = frozenset(n.name for n in walk(node) if isinstance(n, FieldRef))
    lists = frozenset(n.name for n in walk(node) if isinstance(n, ListRef))
    layer = max((FIELDS[f].layer for f in fields), key=LAYER_ORDER.__getitem__, default="L3")
    return Rule(ast=node, fields=fields, lists=lists, layer=layer, source=text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.i = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------------
    def error(self, message: str, pos: int | None = None) -> RuleError:
        return RuleError(message, self.i if pos is None else pos)

    def found(self, pos: int | None = None) -> str:
        pos = self.i if pos is None else pos
        if pos >= self.n:
            return "end of text"
        m = _IDENT.match(self.text, pos) or _VALUE_RUN.match(self.text, pos)
        token = m.group() if m else self.text[pos]
        if len(token) > 30:
            token = token[:30] + "..."
        return f"'{token}'"

    def ws(self) -> None:
        while self.i < self.n and self.text[self.i].isspace():
            self.i += 1

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels", pos)

    def word_at(self, pos: int) -> str | None:
        m = _IDENT.match(self.text, pos)
        return m.group() if m else None

    def expect_char(self, ch: str, message: str) -> None:
        self.ws()
        if self.i < self.n and self.text[self.i] == ch:
            self.i += 1
            return
        raise self.error(f"{message}, found {self.found()}")

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> Node:
        if self.n > MAX_LENGTH:
            raise self.error(f"expression is longer than {MAX_LENGTH} characters", MAX_LENGTH)
        self.ws()
        if self.i >= self.n:
            raise self.error("expected an expression, found end of text")
        node, type_ = self.parse_level(0)
        self.ws()
        if self.i < self.n:
            raise self.error(f"expected 'and', 'or', 'xor' or end of expression, found {self.found()}")
        self.require_bool(node, type_)
        return node

    def require_bool(self, node: Node, type_: Type) -> None:
        if type_ == BOOL_T:
            return
        if type_[1] or type_[0] == ARRAY_BOOL:
            raise self.error(
                f"an element-wise test over [*] must be inside any() or all(): any({to_text(node)})",
                getattr(node, "pos", 0),
            )
        raise self.error(
            f"expected a Boolean expression, but {to_text(node)} is {article(type_[0])}: compare it with a value",
            getattr(node, "pos", 0),
        )

    def match_logical(self, word: str, symbol: str) -> bool:
        self.ws()
        if self.text.startswith(symbol, self.i):
            self.i += len(symbol)
            return True
        if self.word_at(self.i) == word:
            self.i += len(word)
            return True
        return False

    def parse_level(self, level: int) -> tuple[Node, Type]:
        if level == len(LEVELS):
            return self.parse_not()
        word, symbol = LEVELS[level]
        self.ws()
        start = self.i
        items = [self.parse_level(level + 1)]
        while self.match_logical(word, symbol):
            items.append(self.parse_level(level + 1))
        if len(items) == 1:
            return items[0]
        for node, type_ in items:
            self.require_bool(node, type_)
        return Logical(word, tuple(node for node, _ in items), pos=start), BOOL_T

    def parse_not(self) -> tuple[Node, Type]:
        self.ws()
        start = self.i
        if self.text.startswith("!", self.i) and not self.text.startswith("!=", self.i):
            self.i += 1
        elif self.word_at(self.i) == "not":
            self.i += 3
        else:
            return self.parse_primary()
        self.enter(start)
        operand, type_ = self.parse_not()
        self.depth -= 1
        if type_ == (BOOL, True):  # all(not len(x[*])[*] in {3 4}): negate element-wise
            return Not(operand, pos=start), type_
        self.require_bool(operand, type_)
        return Not(operand, pos=start), BOOL_T

    def parse_primary(self) -> tuple[Node, Type]:
        self.ws()
        start = self.i
        if self.i >= self.n:
            raise self.error("expected a field, a function or '(', found end of text")
        if self.text[self.i] == "(":
            self.enter(start)
            self.i += 1
            node, type_ = self.parse_level(0)
            self.expect_char(")", f"expected ')' to close the '(' at position {start}")
            self.depth -= 1
            return node, type_
        left, ltype = self.parse_operand()
        op, op_pos = self.parse_operator()
        if op is None:
            if ltype[0] == BOOL or ltype[0] == ARRAY_BOOL:
                return left, ltype
            raise self.error(
                f"expected a comparison operator (eq, ne, lt, le, gt, ge, in, contains, matches, wildcard) "
                f"after {to_text(left)}, found {self.found()}"
            )
        self.check_operator(left, ltype, op, op_pos)
        right = self.parse_value(op)
        self.check_operands(left, ltype, op, right)
        return Compare(left, op, right, pos=start), (BOOL, ltype[1])

    def parse_operator(self) -> tuple[str | None, int]:
        self.ws()
        start = self.i
        for symbol, op in C_OPS:
            if self.text.startswith(symbol, self.i):
                self.i += len(symbol)
                return op, start
        word = self.word_at(self.i)
        if word in ENGLISH_OPS:
            self.i += len(word)
            return word, start
        if word == "strict":
            self.i += len(word)
            self.ws()
            if self.word_at(self.i) != "wildcard":
                raise self.error(f"expected 'wildcard' after 'strict', found {self.found()}")
            self.i += len("wildcard")
            return "strict wildcard", start
        return None, start

    def parse_operand(self) -> tuple[FieldRef | Call, Type]:
        self.ws()
        start = self.i
        name = self.word_at(self.i)
        if name is None:
            raise self.error(f"expected a field, a function or '(', found {self.found()}")
        if name in KEYWORDS:
            raise self.error(f"expected a field, a function or '(', found keyword '{name}'")
        end = start + len(name)
        after = end
        while after < self.n and self.text[after].isspace():
            after += 1
        if name in FUNCTIONS:
            if after < self.n and self.text[after] == "(":
                self.i = after + 1
                return self.parse_call(name, start)
            raise self.error(f"expected '(' after the function {name}, found {self.found(after)}", after)
        if name not in FIELDS:
            close = difflib.get_close_matches(name, list(FIELDS) + sorted(FUNCTIONS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.error(f"unknown field '{name}'{hint}", start)
        self.i = end
        type_name = FIELDS[name].type
        key = None
        if type_name == MAP_ARRAY_STR:
            what = "header name" if name == "http.request.headers" else "key"
            if not self.text.startswith("[", self.i):
                raise self.error(f'expected a {what}: {name}["{what.replace(" ", "-")}"], found {self.found()}')
            self.i += 1
            self.ws()
            key_pos = self.i
            if not self.text.startswith('"', self.i) and not self.text.startswith("r", self.i):
                raise self.error(f"expected a quoted {what}, found {self.found()}")
            key = self.parse_string().value
            # Cloudflare lowercases header names; cookie and query-argument names keep their case.
            if name == "http.request.headers" and key != key.lower():
                raise self.error(f'header names are lowercase in {name}: write "{key.lower()}"', key_pos)
            self.expect_char("]", f"expected ']' after the {what}")
            type_name = ARRAY_STR
        index: int | str | None = None
        star = False
        if self.text.startswith("[", self.i):
            if type_name != ARRAY_STR:
                raise self.error(f"{name} is {article(type_name)}, it cannot be indexed")
            index, star = self.parse_index()
            type_name = STR
        return FieldRef(name, key, index, pos=start), (type_name, star)

    def parse_index(self) -> tuple[int | str, bool]:
        self.i += 1  # '['
        self.ws()
        if self.text.startswith("*", self.i):
            self.i += 1
            self.expect_char("]", "expected ']' after '[*'")
            return STAR, True
        m = _DIGITS.match(self.text, self.i)
        if not m:
            raise self.error(f"expected '*' or an index number inside [], found {self.found()}")
        self.i = m.end()
        self.expect_char("]", "expected ']' after the index")
        return int(m.group()), False

    def parse_call(self, name: str, start: int) -> tuple[Call, Type]:
        self.enter(start)
        args: list[Node] = []
        if name in ("any", "all"):
            arg, atype = self.parse_level(0)
            if atype not in ((BOOL, True), (ARRAY_BOOL, False)):
                raise self.error(
                    f'{name}() expects an element-wise test such as {name}(http.request.headers.names[*] eq "x"), '
                    f"found {article(atype[0])}",
                    getattr(arg, "pos", start),
                )
            args.append(arg)
            result: Type = BOOL_T
        elif name == "bit_slice":
            result = self.bit_slice_args(args)
        elif name == "concat":
            result = self.concat_args(args)
        else:
            self.ws()
            arg_pos = self.i
            if self.text.startswith('"', self.i) or (
                self.text.startswith("r", self.i) and self.text[self.i + 1 : self.i + 2] in ('"', "#")
            ):
                raise self.error(f"the first argument of {name}() must be a field, not a literal", arg_pos)
            arg, atype = self.parse_operand()
            args.append(arg)
            if name in ("cidr", "cidr6"):
                result = self.cidr_args(name, arg, atype, arg_pos, args)
            elif name == "len":
                if atype[0] not in (STR, ARRAY_STR, ARRAY_INT) or (atype[1] and atype[0] != STR):
                    raise self.error(f"len() expects a String or an Array, found {article(atype[0])}", arg_pos)
                result = (ARRAY_INT, False) if atype[1] else (INT, False)
            else:
                if atype[0] != STR:
                    raise self.error(f"{name}() expects a String, found {article(atype[0])}", arg_pos)
                if name in ("lower", "upper", "url_decode"):
                    if name == "url_decode" and self.peek_comma():
                        self.i += 1
                        self.ws()
                        options = self.parse_literal()
                        if not isinstance(options, Str) or not re.fullmatch(r"[ru]{0,2}", options.value):
                            raise self.error('url_decode() options are a string of "r" and/or "u"', options.pos)
                        args.append(options)
                    result = (ARRAY_STR, False) if atype[1] else (STR, False)
                else:
                    self.expect_char(",", f"expected ',' and a string after the first argument of {name}()")
                    self.ws()
                    lit = self.parse_literal()
                    if not isinstance(lit, Str):
                        raise self.error(f"{name}() expects a quoted string as its second argument", lit.pos)
                    args.append(lit)
                    result = (ARRAY_BOOL, False) if atype[1] else BOOL_T
        self.expect_char(")", f"expected ')' to close {name}(")
        self.depth -= 1
        star = False
        if self.text.startswith("[", self.i):
            element = {ARRAY_STR: STR, ARRAY_BOOL: BOOL, ARRAY_INT: INT}
            if result[0] not in element:
                raise self.error(f"{name}() returns {article(result[0])}, it cannot be indexed")
            bracket = self.i
            index, star = self.parse_index()
            if not star:
                raise self.error("only [*] can follow a function call", bracket)
            result = (element[result[0]], True)
        return Call(name, tuple(args), star, pos=start), result

    def peek_comma(self) -> bool:
        self.ws()
        return self.text.startswith(",", self.i)

    def int_arg(self, name: str, what: str, low: int, high: int) -> Int:
        self.expect_char(",", f"expected ',' and {what} in {name}()")
        self.ws()
        lit = self.parse_literal()
        if not isinstance(lit, Int) or not low <= lit.value <= high:
            raise self.error(f"{name}() expects {what} between {low} and {high}", lit.pos)
        return lit

    def cidr_args(self, name: str, arg: Node, atype: Type, arg_pos: int, args: list[Node]) -> Type:
        if atype != (IP_T, False) or not isinstance(arg, FieldRef):
            raise self.error(f"{name}() expects an IP address field such as ip.src", arg_pos)
        if name == "cidr":
            args.append(self.int_arg(name, "the IPv4 network bits", 1, 32))
        args.append(self.int_arg(name, "the IPv6 network bits", 1, 128))
        return (IP_T, False)

    def bit_slice_args(self, args: list[Node]) -> Type:
        self.ws()
        proto = self.parse_literal()
        names = ", ".join(f'"{p}"' for p in BIT_SLICE_PROTOCOLS)
        if not isinstance(proto, Str) or proto.value not in BIT_SLICE_PROTOCOLS:
            raise self.error(f"bit_slice() reads the header of one of {names}", proto.pos)
        first = self.int_arg("bit_slice", "a start offset in bits", 0, BIT_SLICE_MAX_END - 1)
        last = self.int_arg("bit_slice", "an end offset in bits", 1, BIT_SLICE_MAX_END)
        if not 0 < last.value - first.value <= BIT_SLICE_MAX_WIDTH:
            raise self.error(
                f"bit_slice() reads 1 to {BIT_SLICE_MAX_WIDTH} bits: the end offset must be above the start "
                f"and at most {BIT_SLICE_MAX_WIDTH} past it",
                last.pos,
            )
        args.extend([proto, first, last])
        return (INT, False)

    def concat_args(self, args: list[Node]) -> Type:
        while True:
            self.ws()
            pos = self.i
            if self.text.startswith('"', self.i) or (
                self.text.startswith("r", self.i) and self.text[self.i + 1 : self.i + 2] in ('"', "#")
            ):
                args.append(self.parse_string())
            else:
                arg, atype = self.parse_operand()
                if atype != (STR, False):
                    raise self.error(f"concat() joins Strings, found {article(atype[0])}", pos)
                args.append(arg)
            if not self.peek_comma():
                return (STR, False)
            self.i += 1

    def parse_value(self, op: str) -> Node:
        self.ws()
        pos = self.i
        ch = self.text[self.i] if self.i < self.n else ""
        if op == "in":
            if ch == "{":
                return self.parse_set()
            if ch == "$":
                self.i += 1
                m = _LIST_NAME.match(self.text, self.i)
                if not m:
                    raise self.error(f"expected a list name after '$', found {self.found()}")
                self.i = m.end()
                return ListRef(m.group(), pos=pos)
            raise self.error(f"expected a set {{...}} or a $list after 'in', found {self.found()}")
        if ch in ("{", "$"):
            raise self.error(f"{op} compares with one value; use 'in' for a set or a list")
        if op == "matches" and ch == '"':
            return self.parse_string(regex=True)
        value = self.parse_literal()
        if isinstance(value, Range | IPRange):
            raise self.error("a range a..b is only allowed inside a set: {a..b}", pos)
        return value

    def parse_set(self) -> SetLit:
        start = self.i
        self.i += 1
        items = []
        while True:
            self.ws()
            if self.i >= self.n:
                raise self.error(f"expected '}}' to close the set opened at position {start}")
            if self.text[self.i] == "}":
                self.i += 1
                break
            items.append(self.parse_literal())
            if self.i < self.n and not (self.text[self.i].isspace() or self.text[self.i] == "}"):
                raise self.error(f"expected a space or '}}' between set values, found {self.found()}")
        if not items:
            raise self.error("expected at least one value in the set", start)
        return SetLit(tuple(items), pos=start)

    def parse_literal(self) -> Str | Int | IP | Range | IPRange:
        pos = self.i
        if self.i >= self.n:
            raise self.error('expected a value (a "string", a number or an IP address), found end of text')
        ch = self.text[self.i]
        if ch == '"' or (ch == "r" and self.i + 1 < self.n and self.text[self.i + 1] in '"#'):
            return self.parse_string()
        m = _VALUE_RUN.match(self.text, self.i)
        if not m:
            raise self.error(f'expected a value (a "string", a number or an IP address), found {self.found()}')
        token = m.group()
        self.i = m.end()
        if _HEX.fullmatch(token):
            return Int(int(token, 16), pos=pos)
        if _DIGITS.fullmatch(token):
            value = int(token)
            if value >= 2**63:
                raise self.error("number is too large", pos)
            return Int(value, pos=pos)
        rm = _RANGE.fullmatch(token)
        if rm:
            lo, hi = int(rm.group(1)), int(rm.group(2))
            if lo > hi or hi >= 2**63:
                raise self.error(f"expected a range low..high with low <= high, found '{token}'", pos)
            return Range(lo, hi, pos=pos)
        if ".." in token:
            return self.ip_range(token, pos)
        if ":" in token or _IPV4ISH.fullmatch(token):
            try:
                return IP(ipaddress.ip_network(token, strict=True), pos=pos)
            except ValueError as exc:
                if "host bits set" in str(exc):
                    fixed = ipaddress.ip_network(token, strict=False)
                    raise self.error(f"{token} has host bits set: did you mean {fixed}?", pos) from None
                address, slash, bits = token.partition("/")
                longest = 0
                if slash and bits.isdigit():
                    with contextlib.suppress(ValueError):  # RuleError is a ValueError: raised outside
                        longest = ipaddress.ip_address(address).max_prefixlen
                if longest and int(bits) > longest:
                    family = "IPv4" if longest == 32 else "IPv6"
                    raise self.error(
                        f"{token[:60]}: a prefix length is /0 to /{longest} for an {family} network, "
                        f"/{bits[:5]} is out of range",
                        pos,
                    ) from None
                raise self.error(f"expected an IP address or CIDR network, found '{token[:50]}'", pos) from None
        raise self.error(f"expected a value (a \"string\", a number or an IP address), found '{token[:30]}'", pos)

    def ip_range(self, token: str, pos: int) -> IPRange:
        lo_text, _, hi_text = token.partition("..")
        try:
            lo, hi = ipaddress.ip_address(lo_text), ipaddress.ip_address(hi_text)
        except ValueError:
            raise self.error(
                f"expected a range low..high of numbers or IP addresses, found '{token[:60]}'", pos
            ) from None
        if lo.version != hi.version or lo > hi:
            raise self.error(
                f"expected an address range low..high of one family with low <= high, found '{token[:90]}'", pos
            )
        return IPRange(lo, hi, pos=pos)

    def parse_string(self, regex: bool = False) -> Str:
        """A quoted or raw string. ``regex``: a quoted regex after ``matches``, where Cloudflare
        applies regex escaping: only ``\\"`` is unescaped, every other backslash reaches the regex
        engine as written. One that holds a backslash is kept as a raw string, which prints back
        the same regex."""
        start = self.i
        if self.text[self.i] == "r":
            self.i += 1
            hashes = 0
            while self.i < self.n and self.text[self.i] == "#":
                hashes += 1
                self.i += 1
            if self.i >= self.n or self.text[self.i] != '"':
                raise self.error(f"expected '\"' to open the raw string, found {self.found()}")
            closer = '"' + "#" * hashes
            end = self.text.find(closer, self.i + 1)
            if end < 0:
                raise self.error(f"expected '{closer}' to close the raw string opened at position {start}", self.n)
            value = self.text[self.i + 1 : end]
            self.i = end + len(closer)
            return Str(value, raw=True, pos=start)
        self.i += 1
        out = []
        while True:
            if self.i >= self.n:
                raise self.error(f"expected '\"' to close the string opened at position {start}")
            ch = self.text[self.i]
            if ch == "\\" and regex:
                nxt = self.text[self.i + 1 : self.i + 2]
                if not nxt:
                    raise self.error(f"expected '\"' to close the string opened at position {start}")
                out.append(nxt if nxt == '"' else ch + nxt)
                self.i += 2
            elif ch == "\\":
                nxt = self.text[self.i + 1 : self.i + 2]
                if nxt in ('"', "\\"):
                    out.append(nxt)
                    self.i += 2
                elif nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", self.text[self.i + 2 : self.i + 4]):
                    out.append(chr(int(self.text[self.i + 2 : self.i + 4], 16)))
                    self.i += 4
                else:
                    raise self.error('expected \\", \\\\ or \\xHH after a backslash (or use a raw string r"...")')
            elif ch == '"':
                self.i += 1
                value = "".join(out)
                return Str(value, raw=regex and "\\" in value, pos=start)
            else:
                out.append(ch)
                self.i += 1

    # -- type checking ---------------------------------------------------------------
    def check_operator(self, left: Node, ltype: Type, op: str, op_pos: int) -> None:
        desc = to_text(left)
        type_name = ltype[0]
        if type_name in (ARRAY_STR, ARRAY_BOOL):
            raise self.error(
                f"{desc} is {article(type_name)}: test its elements with any({desc}[*] {op} ...)", left.pos
            )
        if type_name == BOOL:
            raise self.error(f"{desc} is a Boolean: use it alone ({desc}, not {desc}), not with {op}", op_pos)
        if op not in OPS_BY_TYPE[type_name]:
            raise self.error(f"{op} does not apply to {desc}, which is {article(type_name)}", op_pos)

    def check_operands(self, left: Node, ltype: Type, op: str, right: Node) -> None:
        desc = to_text(left)
        type_name = ltype[0]
        is_proto = isinstance(left, FieldRef) and left.name == "ip.proto"
        values = right.items if isinstance(right, SetLit) else () if isinstance(right, ListRef) else (right,)
        for value in values:
            vtype = _literal_type(value)
            ok = vtype == type_name or (type_name == INT and isinstance(value, Range))
            if is_proto and isinstance(value, Str):
                if value.value not in PROTOCOL_NUMBERS:
                    names = ", ".join(sorted(PROTOCOL_NUMBERS))
                    raise self.error(f"expected a protocol number or one of {names}, found {to_text(value)}", value.pos)
                ok = True
            if not ok:
                raise self.error(f"{desc} is {article(type_name)}, cannot compare with {article(vtype)}", value.pos)
            self.check_range(left, value)
            if isinstance(value, IP) and op in ("eq", "ne") and value.value.prefixlen != value.value.max_prefixlen:
                raise self.error(
                    f"eq/ne compare with one address; use 'in' for a network: {desc} in {{{value.value}}}", value.pos
                )
        if op == "matches":
            pattern = right.value
            if len(pattern) > MAX_REGEX_LENGTH:
                raise self.error(f"regular expression is longer than {MAX_REGEX_LENGTH} characters", right.pos)
            if _UNSUPPORTED_REGEX.search(pattern):
                raise self.error(
                    "regular expressions have no look-around or backreferences here "
                    "(Cloudflare uses Rust's regex syntax)",
                    right.pos,
                )
            try:
                re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                raise self.error(f"expected a valid regular expression: {exc}", right.pos) from None

    def check_range(self, left: Node, value: Node) -> None:
        """A number outside what the field can hold is refused here, before any compiler sees it."""
        allowed = VALUE_RANGES.get(left.name) if isinstance(left, FieldRef) else None
        if allowed is None:
            return
        numbers = [value.value] if isinstance(value, Int) else [value.lo, value.hi] if isinstance(value, Range) else []
        for number in numbers:
            if not allowed.low <= number <= allowed.high:
                raise self.error(
                    f"{left.name} is {allowed.what}, {allowed}: {number} is out of range", getattr(value, "pos", 0)
                )


def _literal_type(value: Node) -> str:
    if isinstance(value, Str):
        return STR
    if isinstance(value, IP | IPRange):
        return IP_T
    if isinstance(value, Range):
        return "Integer range"
    return INT

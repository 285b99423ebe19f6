"""Property tests: printed rules parse back to the same tree; garbage never crashes the parser."""

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mitigations.rules import RuleError, parse
from mitigations.rules.ast import IP, Call, Compare, FieldRef, Int, ListRef, Logical, Not, Range, SetLit, Str, to_text
from mitigations.rules.fields import FIELDS, VALUE_RANGES

INT_FIELDS = sorted(n for n, s in FIELDS.items() if s.type == "Integer")
STR_FIELDS = sorted(n for n, s in FIELDS.items() if s.type == "String")
IP_FIELDS = ["ip.src", "ip.dst"]
BOOL_FIELDS = sorted(n for n, s in FIELDS.items() if s.type == "Boolean")
REGEXES = ["^/wp-login\\.php$", "(?i)curl|wget", "[0-9]{3,}", "a.b", "\\d+\\s*"]

ints = st.integers(0, 2**32).map(Int)
strings = st.builds(Str, st.text(max_size=12), st.booleans())
ipv4 = st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False), st.integers(0, 2**32 - 1), st.integers(0, 32))
ipv6 = st.builds(
    lambda a, p: ipaddress.ip_network((a, p), strict=False), st.integers(0, 2**128 - 1), st.integers(0, 128)
)
networks = st.one_of(ipv4, ipv6).map(IP)
addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(lambda a: IP(ipaddress.ip_network(a)))
list_refs = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).map(ListRef)


def str_call(name):
    return st.sampled_from(STR_FIELDS).map(lambda f: Call(name, (FieldRef(f),)))


def field(names):
    return st.sampled_from(names).map(FieldRef)


def field_ints(name: str):
    """Numbers the field can hold: the parser refuses the others (tcp.dstport eq 65536)."""
    allowed = VALUE_RANGES.get(name)
    return ints if allowed is None else st.integers(allowed.low, allowed.high).map(Int)


def field_ranges(name: str):
    allowed = VALUE_RANGES.get(name)
    high = 65535 if allowed is None else allowed.high
    return st.tuples(st.integers(0, high), st.integers(0, high)).map(lambda t: Range(min(t), max(t)))


int_compare = st.sampled_from(INT_FIELDS).flatmap(
    lambda name: st.one_of(
        st.builds(
            Compare, st.just(FieldRef(name)), st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), field_ints(name)
        ),
        st.builds(
            Compare,
            st.just(FieldRef(name)),
            st.just("in"),
            st.one_of(
                st.lists(st.one_of(field_ints(name), field_ranges(name)), min_size=1, max_size=4).map(
                    lambda i: SetLit(tuple(i))
                ),
                list_refs,
            ),
        ),
    )
)
ip_compare = st.one_of(
    st.builds(Compare, field(IP_FIELDS), st.sampled_from(["eq", "ne"]), addresses),
    st.builds(
        Compare,
        field(IP_FIELDS),
        st.just("in"),
        st.one_of(st.lists(networks, min_size=1, max_size=4).map(lambda i: SetLit(tuple(i))), list_refs),
    ),
)
str_compare = st.one_of(
    st.builds(
        Compare,
        field(STR_FIELDS),
        st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "contains", "wildcard", "strict wildcard"]),
        strings,
    ),
    st.builds(Compare, field(STR_FIELDS), st.just("matches"), st.builds(Str, st.sampled_from(REGEXES), st.booleans())),
    st.builds(
        Compare,
        field(STR_FIELDS),
        st.just("in"),
        st.lists(strings, min_size=1, max_size=3).map(lambda i: SetLit(tuple(i))),
    ),
    st.builds(
        Compare, st.sampled_from(STR_FIELDS).map(lambda f: Call("lower", (FieldRef(f),))), st.just("eq"), strings
    ),
    st.builds(Compare, st.sampled_from(STR_FIELDS).map(lambda f: Call("len", (FieldRef(f),))), st.just("gt"), ints),
)
header_key = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
function_atoms = st.one_of(
    st.builds(lambda f, s: Call("starts_with", (FieldRef(f), s)), st.sampled_from(STR_FIELDS), strings),
    st.builds(lambda f, s: Call("ends_with", (FieldRef(f), s)), st.sampled_from(STR_FIELDS), strings),
    st.builds(lambda s: Call("any", (Compare(FieldRef("http.request.headers.names", index="*"), "eq", s),)), strings),
    st.builds(
        lambda s: Call(
            "all",
            (Compare(Call("lower", (FieldRef("http.request.headers.names", index="*"),), star=True), "contains", s),),
        ),
        strings,
    ),
    st.builds(
        lambda k, i, s: Compare(FieldRef("http.request.headers", key=k, index=i), "eq", s),
        header_key,
        st.integers(0, 3),
        strings,
    ),
)
atoms = st.one_of(int_compare, ip_compare, str_compare, field(BOOL_FIELDS), function_atoms)
expressions = st.recursive(
    atoms,
    lambda children: st.one_of(
        children.map(Not),
        st.builds(
            lambda op, items: Logical(op, tuple(items)),
            st.sampled_from(["and", "or", "xor"]),
            st.lists(children, min_size=2, max_size=4),
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_print_parse_print_is_stable(tree):
    text = to_text(tree)
    rule = parse(text)
    assert rule.ast == tree
    assert rule.to_text() == text
    assert parse(rule.to_text()).to_text() == text


TOKENS = [
    "ip.src", "tcp.dstport", "http.host", "tcp.flags.syn", "http.request.headers.names", "http.request.headers",
    "eq", "==", "in", "not", "!", "and", "&&", "or", "xor", "matches", "wildcard", "strict", "any", "lower", "len",
    "starts_with", "(", ")", "{", "}", "[", "]", "[*]", "*", ",", '"x"', 'r#"', '"', "\\", "$l", "80", "1.2.3.0/24",
    "::1", "8000..8999", "10.0.0.1",
]  # fmt: skip


@settings(max_examples=1500, deadline=500)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join)))
def test_garbage_raises_only_rule_error(text):
    try:
        parse(text)
    except RuleError as exc:
        assert 0 <= exc.position <= max(len(text), 0) + 1


@settings(max_examples=50, deadline=2000)
@given(st.integers(65, 5000), st.sampled_from(["(", "not ", "!", "any(", "lower("]))
def test_deep_nesting_is_refused_not_crashed(depth, opener):
    try:
        parse(opener * depth + "tcp.flags.syn" + ")" * depth)
    except RuleError as exc:
        assert "nested deeper" in exc.message or "longer than" in exc.message or "expected" in exc.message

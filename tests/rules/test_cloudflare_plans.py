"""Cloudflare's plan rules, checked on compiled requests: each limit, just under and just over."""

import pytest

from mitigations.rules import CompileError, compile_ip_access_rule, compile_list, compile_rate_limit, compile_waf_rule
from mitigations.rules.cloudflare_plans import Usage, plan_problems

ZONE, ACCOUNT = "z1", "a1"


def req(r) -> dict:
    return {"method": r.method, "path": r.path, "body": r.body}


def waf(expression='http.request.uri.path eq "/login"') -> dict:
    return req(compile_waf_rule(expression, zone_id=ZONE, ruleset_id="rs1"))


def ratelimit(period=10, timeout=10, characteristics=("ip.src", "cf.colo.id")) -> dict:
    return req(
        compile_rate_limit(
            'http.request.uri.path eq "/login"',
            zone_id=ZONE,
            requests_per_period=50,
            period=period,
            mitigation_timeout=timeout,
            characteristics=characteristics,
        )
    )


@pytest.mark.parametrize(("plan", "limit"), [("free", 5), ("pro", 20), ("business", 100), ("enterprise", 1000)])
def test_custom_rules_per_zone_stop_at_the_plans_limit(plan, limit):
    assert plan_problems([waf()], plan, Usage(custom_rules=limit - 1)) == []
    (problem,) = plan_problems([waf()], plan, Usage(custom_rules=limit))
    assert f"allows {limit:,} custom rules per zone" in problem and plan.capitalize() in problem


@pytest.mark.parametrize(("plan", "limit"), [("free", 1), ("pro", 2), ("business", 5), ("enterprise", 100)])
def test_rate_limiting_rules_per_zone_stop_at_the_plans_limit(plan, limit):
    assert plan_problems([ratelimit()], plan, Usage(ratelimit_rules=limit - 1)) == []
    (problem,) = plan_problems([ratelimit()], plan, Usage(ratelimit_rules=limit))
    assert f"allows {limit:,} rate limiting rules per zone" in problem


@pytest.mark.parametrize(
    ("plan", "allowed", "refused"),
    [("free", 10, 15), ("pro", 60, 90), ("business", 600, 900)],
)
def test_counting_periods_are_those_of_the_plan(plan, allowed, refused):
    assert plan_problems([ratelimit(period=allowed)], plan) == []
    (problem,) = plan_problems([ratelimit(period=refused)], plan)
    assert f"period {refused} s is not available on the {plan.capitalize()} plan" in problem
    assert f"{allowed} s" in problem  # names the longest period the plan has


def test_enterprise_counts_over_any_supported_period():
    for period in (10, 900, 3600, 65535):
        assert plan_problems([ratelimit(period=period)], "enterprise") == []


@pytest.mark.parametrize(("plan", "allowed", "refused"), [("free", 10, 60), ("pro", 3600, 86400)])
def test_mitigation_timeouts_are_those_of_the_plan(plan, allowed, refused):
    assert plan_problems([ratelimit(timeout=allowed)], plan) == []
    (problem,) = plan_problems([ratelimit(timeout=refused)], plan)
    assert f"mitigation timeout {refused} s is not available on the {plan.capitalize()} plan" in problem


def test_counting_by_a_header_needs_advanced_rate_limiting():
    rule = ratelimit(characteristics=('http.request.headers["x-api-key"]', "cf.colo.id"))
    (problem,) = plan_problems([rule], "business")
    assert "Advanced Rate Limiting" in problem
    assert plan_problems([rule], "enterprise") == []


@pytest.mark.parametrize(
    ("plan", "refused"), [("free", True), ("pro", True), ("business", False), ("enterprise", False)]
)
def test_matches_needs_business_or_enterprise(plan, refused):
    problems = plan_problems([waf(r'http.request.uri.path matches r"^/wp-(login|admin)"')], plan)
    assert bool(problems) == refused
    if refused:
        assert "`matches` needs a Business or Enterprise plan" in problems[0]
    assert plan_problems([waf('http.request.uri.path contains "wp-login"')], plan) == []


def _list_requests(name="acme_bad", items=2) -> list[dict]:
    return [req(r) for r in compile_list(name, [f"198.18.0.{i}" for i in range(items)], account_id=ACCOUNT)]


@pytest.mark.parametrize(("plan", "limit"), [("free", 1), ("pro", 10), ("business", 10), ("enterprise", 1000)])
def test_lists_per_account_stop_at_the_plans_limit(plan, limit):
    assert plan_problems(_list_requests(), plan, Usage(lists=limit - 1, list_items=0)) == []
    (problem,) = plan_problems(_list_requests(), plan, Usage(lists=limit, list_items=0))
    assert f"allows {limit:,} custom lists per account" in problem


@pytest.mark.parametrize(("plan", "limit"), [("free", 10_000), ("business", 10_000), ("enterprise", 500_000)])
def test_list_items_per_account_stop_at_the_plans_limit(plan, limit):
    assert plan_problems(_list_requests(items=2), plan, Usage(lists=0, list_items=limit - 2)) == []
    (problem,) = plan_problems(_list_requests(items=2), plan, Usage(lists=0, list_items=limit - 1))
    assert f"allows {limit:,} list items per account" in problem and "this adds 2" in problem


@pytest.mark.parametrize("name", ["Acme_Bad", "acme-bad", "a" * 51, ""])
def test_list_names_follow_cloudflares_syntax(name):
    requests = [{"method": "POST", "path": f"/accounts/{ACCOUNT}/rules/lists", "body": {"name": name, "kind": "ip"}}]
    (problem,) = plan_problems(requests, "")
    assert "^[a-z0-9_]+$" in problem and "50 characters" in problem
    with pytest.raises(CompileError, match="lowercase letters"):
        compile_list(name, ["198.18.0.1"], account_id=ACCOUNT)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("198.51.0.0/16", True),
        ("198.51.100.0/24", True),
        ("198.51.96.0/20", False),
        ("198.0.0.0/8", False),
        ("2001:db8::/32", True),
        ("2001:db8::/48", True),
        ("2001:db8::/64", True),
        ("2001:db8::/56", False),
    ],
)
def test_ip_access_masks_are_16_24_and_32_48_64(value, ok):
    body = {"mode": "block", "configuration": {"target": "ip_range", "value": value}}
    requests = [{"method": "POST", "path": f"/zones/{ZONE}/firewall/access_rules/rules", "body": body}]
    assert (plan_problems(requests, "") == []) == ok
    if ok:
        compile_ip_access_rule(value, zone_id=ZONE)
    else:
        with pytest.raises(CompileError, match="ranges of"):
            compile_ip_access_rule(value, zone_id=ZONE)


def test_an_unknown_plan_checks_only_what_every_plan_shares():
    assert plan_problems([waf(r'http.request.uri.path matches "^/a"')], "", Usage(custom_rules=10_000)) == []

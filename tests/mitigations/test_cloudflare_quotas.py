"""Cloudflare plan limits end to end, against the recording stand-in for Cloudflare's API:
a mitigation over a limit is refused with the limit named, and nothing that writes is sent."""

from __future__ import annotations

import pytest

from mitigations import services
from mitigations.models import Mitigation, MitigationList

from .test_cloudflare import ACCOUNT, ZONE, _rule_answer, cf, ok, ruleset, run  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
CUSTOM = "http_request_firewall_custom"


def writes(fake) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in fake.seen if method != "GET"]


def test_a_free_zone_with_five_custom_rules_gets_no_sixth(cf, run, settings):  # noqa: F811
    settings.CLOUDFLARE_PLAN = "free"
    five = [{"id": f"r{i}", "expression": "true"} for i in range(5)]
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, five))
    mitigation = run(kind="waf_rule", expression='http.user_agent contains "masscan"')
    assert mitigation.state == Mitigation.State.FAILED
    assert "the Free plan allows 5 custom rules per zone; the zone has 5" in mitigation.error
    assert "before sending anything" in mitigation.error
    assert writes(cf) == []
    cf.assert_done()


def test_under_the_limit_the_rule_is_added_after_counting(cf, run, settings):  # noqa: F811
    settings.CLOUDFLARE_PLAN = "free"
    four = [{"id": f"r{i}", "expression": "true"} for i in range(4)]
    for _ in range(2):  # once to count, once to find the ruleset to add to
        cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, four))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", CUSTOM, "r9")
    mitigation = run(kind="waf_rule", expression='http.user_agent contains "masscan"')
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    cf.assert_done()


@pytest.fixture
def zone(make_target, customer_a):
    return make_target("cloudflare", name="cf-acme", account_id=ACCOUNT, zone_id=ZONE, customer=customer_a)


def test_a_regex_on_a_pro_zone_is_refused_at_compile_time_and_never_sent(cf, draft, zone):  # noqa: F811
    mitigation = draft(
        kind="waf_rule",
        target=zone,
        options={"cloudflare_plan": "pro"},
        expression=r'http.request.uri.path matches r"^/wp-(login|admin)\.php"',
    )
    assert "`matches` needs a Business or Enterprise plan" in mitigation.compile_errors["cloudflare"]
    assert cf.seen == []


def test_a_rate_limit_period_the_plan_lacks_is_refused_naming_the_periods(cf, draft, zone):  # noqa: F811
    mitigation = draft(
        kind="rate_limit",
        target=zone,
        options={"cloudflare_plan": "pro"},
        expression='http.request.uri.path eq "/login"',
        rate={"requests": 50, "period": 120, "mitigation_timeout": 600, "per_source": True},
    )
    error = mitigation.compile_errors["cloudflare"]
    assert "period 120 s is not available on the Pro plan" in error and "60 s" in error
    assert cf.seen == []


def test_a_second_rate_limit_rule_on_a_free_zone_is_refused(cf, run, settings):  # noqa: F811
    settings.CLOUDFLARE_PLAN = "free"
    phase = "http_ratelimit"
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint", answer=ruleset("rl1", phase, [{"id": "x"}]))
    mitigation = run(
        kind="rate_limit",
        expression='http.request.uri.path eq "/login"',
        rate={"requests": 50, "period": 10, "mitigation_timeout": 10, "per_source": True},
    )
    assert mitigation.state == Mitigation.State.FAILED
    assert "allows 1 rate limiting rules per zone; the zone has 1" in mitigation.error
    assert writes(cf) == []
    cf.assert_done()


def test_list_items_over_the_accounts_quota_create_no_list(cf, run, settings, customer_a, engineer):  # noqa: F811
    settings.CLOUDFLARE_PLAN = "business"
    blocklist = MitigationList.objects.create(name="acme_many", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.7.0/24\n198.18.9.9\n", user=engineer)
    lists = [{"id": "l1", "name": "other", "kind": "ip", "num_items": 9_999}]
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, []))
    cf.expect("GET", f"/accounts/{ACCOUNT}/rules/lists", answer=ok(lists))
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    assert mitigation.state == Mitigation.State.FAILED
    assert "the Business plan allows 10,000 list items per account; 9,999 are in use and this adds 2" in (
        mitigation.error
    )
    assert writes(cf) == []
    cf.assert_done()


def test_the_lists_per_account_limit_is_named(cf, run, settings, customer_a, engineer):  # noqa: F811
    settings.CLOUDFLARE_PLAN = "free"
    blocklist = MitigationList.objects.create(name="acme_one", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.9.9\n", user=engineer)
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, []))
    cf.expect("GET", f"/accounts/{ACCOUNT}/rules/lists", answer=ok([{"id": "l1", "num_items": 3}]))
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    assert mitigation.state == Mitigation.State.FAILED
    assert "the Free plan allows 1 custom lists per account; the account has 1" in mitigation.error
    assert writes(cf) == []
    cf.assert_done()


def test_an_ip_access_range_of_another_size_is_refused_before_approval(cf, draft, zone):  # noqa: F811
    mitigation = draft(kind="ip_access", target=zone, value="198.18.0.0/20")
    assert "ranges of /16, /24 only" in mitigation.compile_errors["cloudflare"]
    assert cf.seen == []


def test_the_configured_plan_is_checked_when_the_draft_is_compiled(cf, draft, settings, zone):  # noqa: F811
    settings.CLOUDFLARE_PLAN = "free"
    mitigation = draft(
        kind="rate_limit",
        target=zone,
        expression='http.request.uri.path eq "/login"',
        rate={"requests": 50, "period": 60, "mitigation_timeout": 600, "per_source": True},
    )
    assert (
        "period 60 s is not available on the Free plan (counting periods: 10 s)"
        in (mitigation.compile_errors["cloudflare"])
    )
    assert cf.seen == []

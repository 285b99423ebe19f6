"""The Cloudflare backend against a local HTTP server that checks each request's method, path and body.

Shapes follow Cloudflare's API documentation: rulesets (WAF custom rules in the
``http_request_firewall_custom`` phase, rate limiting rules in ``http_ratelimit``, Magic
Firewall in the account's ``magic_transit`` phase), IP Access rules, Lists and items.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from mitigations import services
from mitigations.backends import BackendError
from mitigations.backends.cloudflare import CloudflareBackend
from mitigations.models import EnforcementTarget, Mitigation, MitigationList
from mitigations.services import MitigationError

pytestmark = pytest.mark.django_db
TOKEN = "test-token-123"
ZONE, ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353", "01a7362d577a6c3019a474fd6f485823"


@dataclass
class Expected:
    method: str
    path: str
    status: int = 200
    answer: Any = None
    body: Any = None  # the exact JSON body expected, or None to skip the check
    headers: dict = field(default_factory=dict)


class FakeCloudflare:
    def __init__(self) -> None:
        self.expected: list[Expected] = []
        self.seen: list[tuple[str, str, Any]] = []
        self.problems: list[str] = []

    def expect(self, method: str, path: str, **kwargs: Any) -> None:
        self.expected.append(Expected(method, path, **kwargs))

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path.removeprefix("/client/v4")
        self.seen.append((handler.command, path, body))
        if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.problems.append(f"{handler.command} {path}: no bearer token")
        if not self.expected:
            self.problems.append(f"unexpected {handler.command} {path}")
            return self._send(handler, 500, {"success": False, "errors": [{"message": "unexpected"}]})
        want = self.expected.pop(0)
        if (handler.command, path) != (want.method, want.path):
            self.problems.append(f"expected {want.method} {want.path}, got {handler.command} {path}")
        if want.body is not None and body != want.body:
            self.problems.append(f"{want.method} {want.path} body {body!r} != {want.body!r}")
        answer = want.answer if want.answer is not None else {"success": True, "errors": [], "result": {}}
        self._send(handler, want.status, answer, want.headers)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, answer: Any, headers: dict | None = None) -> None:
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def assert_done(self) -> None:
        assert not self.problems, self.problems
        assert not self.expected, f"never requested: {[(e.method, e.path) for e in self.expected]}"


@pytest.fixture
def cf(settings):
    fake = FakeCloudflare()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.handle(self)

        do_POST = do_PUT = do_DELETE = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.CLOUDFLARE_API_BASE = f"http://127.0.0.1:{server.server_port}/client/v4"
    settings.CLOUDFLARE_API_TOKEN = TOKEN
    settings.CLOUDFLARE_BACKOFF = 0.01
    settings.CLOUDFLARE_MAX_RETRIES = 3
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def run(draft, engineer, senior, django_capture_on_commit_callbacks, make_target, customer_a, approve):
    """Draft → propose → approve (as its blast radius asks) → apply a Cloudflare mitigation; returns it refreshed."""
    zone = make_target("cloudflare", name="cf-acme", account_id=ACCOUNT, zone_id=ZONE, customer=customer_a)

    def make(**kwargs: Any) -> Mitigation:
        params = {"target": zone}
        params.update(kwargs)
        mitigation = draft(**params)
        assert not mitigation.compile_errors, mitigation.compile_errors
        services.mitigation_propose(mitigation=mitigation, user=engineer)
        approve(mitigation)
        with django_capture_on_commit_callbacks(execute=True):
            services.mitigation_apply(mitigation=mitigation, user=senior)
        mitigation.refresh_from_db()
        return mitigation

    return make


def ok(result: Any) -> dict:
    return {"success": True, "errors": [], "messages": [], "result": result}


def ruleset(ruleset_id: str, phase: str, rules: list[dict]) -> dict:
    return ok({"id": ruleset_id, "kind": "zone", "phase": phase, "rules": rules})


def test_waf_custom_rule_is_added_to_the_existing_phase_entry_point_and_deleted_on_rollback(cf, run, engineer):
    expression = 'http.request.uri.path contains "/xmlrpc.php" and http.request.method eq "POST"'
    phase = "http_request_firewall_custom"
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint", answer=ruleset("rs1", phase, [{"id": "x"}]))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", phase, "r9")
    mitigation = run(kind="waf_rule", expression=expression)
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    assert cf.seen[-1] == (
        "POST",
        f"/zones/{ZONE}/rulesets/rs1/rules",
        {
            "description": f"[{mitigation.name}] block {expression}",
            "expression": expression,
            "action": "block",
            "enabled": True,
        },
    )
    assert mitigation.backend_answers["cloudflare"]["resources"] == [
        {
            "kind": "ruleset_rule",
            "path": f"/zones/{ZONE}/rulesets/rs1/rules/r9",
            "ruleset": f"/zones/{ZONE}/rulesets/rs1",
            "id": "r9",
            "rule": {"expression": expression, "action": "block", "enabled": True},
        }
    ]
    cf.expect("DELETE", f"/zones/{ZONE}/rulesets/rs1/rules/r9", answer=ok({}))
    services.mitigation_rollback(mitigation=mitigation, user=engineer)
    assert mitigation.state == Mitigation.State.ROLLED_BACK
    cf.assert_done()


def test_drift_check_reads_the_ruleset_back_and_flags_a_deleted_rule(cf, run):
    phase = "http_request_firewall_custom"
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint", answer=ruleset("rs1", phase, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", phase, "r9")
    mitigation = run(kind="waf_rule", expression='http.user_agent contains "masscan"')
    sent = {**cf.seen[-1][2], "id": "r9"}
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", phase, [sent]))
    assert services.mitigations_check_drift() == 0
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", phase, [{"id": "other"}]))
    assert services.mitigations_check_drift() == 1
    mitigation.refresh_from_db()
    assert "not installed" in mitigation.drift["cloudflare"]
    cf.assert_done()


def _rule_answer(cf: FakeCloudflare, ruleset_id: str, phase: str, rule_id: str = "r1") -> None:
    """Make the next ruleset-changing request answer with the rule it was sent (so its id is found)."""
    original = cf.handle

    def handle(handler):
        if handler.command in ("POST", "PUT") and "/rulesets/" in handler.path and cf.expected:
            want = cf.expected[0]
            if want.answer is None:
                length = int(handler.headers.get("Content-Length") or 0)
                body = json.loads(handler.rfile.read(length))
                rule = body["rules"][0] if "rules" in body else body
                want.answer = ruleset(ruleset_id, phase, [{"id": rule_id, **rule}])
                handler.headers.replace_header("Content-Length", "0")
                cf.seen.append((handler.command, handler.path.removeprefix("/client/v4"), body))
                if want.body is not None and body != want.body:
                    cf.problems.append(f"body {body!r} != {want.body!r}")
                cf.expected.pop(0)
                return FakeCloudflare._send(handler, want.status, want.answer)
        return original(handler)

    cf.handle = handle


def test_waf_rule_creates_the_entry_point_when_the_zone_has_none(cf, run):
    phase = "http_request_firewall_custom"
    cf.expect(
        "GET",
        f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint",
        status=404,
        answer={"success": False, "errors": [{"code": 10003, "message": "could not find entrypoint ruleset"}]},
    )
    cf.expect("PUT", f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint")
    _rule_answer(cf, "rs-new", phase)
    mitigation = run(kind="waf_rule", expression='http.user_agent contains "sqlmap"')
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    method, path, body = cf.seen[-1]
    assert method == "PUT" and body == {
        "rules": [
            {
                "description": f'[{mitigation.name}] block http.user_agent contains "sqlmap"',
                "expression": 'http.user_agent contains "sqlmap"',
                "action": "block",
                "enabled": True,
            }
        ]
    }
    cf.assert_done()


def test_rate_limiting_rule_has_the_documented_ratelimit_object(cf, run):
    phase = "http_ratelimit"
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint", answer=ruleset("rl1", phase, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rl1/rules")
    _rule_answer(cf, "rl1", phase)
    mitigation = run(
        kind="rate_limit",
        expression='http.request.uri.path eq "/login"',
        rate={"requests": 50, "period": 60, "mitigation_timeout": 600, "per_source": True},
    )
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    method, path, body = cf.seen[-1]
    assert body["ratelimit"] == {
        "characteristics": ["ip.src", "cf.colo.id"],
        "period": 60,
        "requests_per_period": 50,
        "mitigation_timeout": 600,
    }
    assert body["action"] == "block" and body["expression"] == 'http.request.uri.path eq "/login"'
    cf.assert_done()


def test_ip_access_rule_for_an_asn_is_posted_and_deleted_by_id(cf, run, engineer):
    cf.expect(
        "POST",
        f"/zones/{ZONE}/firewall/access_rules/rules",
        body=None,
        answer=ok({"id": "ar-42", "mode": "challenge"}),
    )
    mitigation = run(kind="ip_access", value="AS64500", expression="", action="challenge")
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    assert cf.seen[0][2] == {
        "mode": "challenge",
        "configuration": {"target": "asn", "value": "AS64500"},
        "notes": f"[{mitigation.name}] challenge AS64500",
    }
    cf.expect("DELETE", f"/zones/{ZONE}/firewall/access_rules/rules/ar-42", answer=ok({"id": "ar-42"}))
    services.mitigation_rollback(mitigation=mitigation, user=engineer)
    cf.assert_done()


def test_ip_list_creates_the_list_adds_items_and_a_rule_that_uses_it(cf, run, customer_a, engineer):
    blocklist = MitigationList.objects.create(name="acme_botnet", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.7.0/24 # botnet C2\n198.18.9.9\n", user=engineer)
    cf_name = None

    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists", answer=ok({"id": "list-1", "name": "x"}))
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists/list-1/items", answer=ok({"operation_id": "op-1"}))
    phase = "http_request_firewall_custom"
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{phase}/entrypoint", answer=ruleset("rs1", phase, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", phase, "r-list")
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    cf_name = f"{mitigation.name.replace('-', '_')}_acme_botnet"
    (m1, p1, list_body), (m2, p2, items), _get, (m4, p4, rule) = cf.seen
    assert list_body == {"name": cf_name, "kind": "ip", "description": f"[{mitigation.name}] block list acme_botnet"}
    assert items == [{"ip": "198.18.7.0/24", "comment": "botnet C2"}, {"ip": "198.18.9.9"}]
    assert rule["expression"] == f"ip.src in ${cf_name}" and rule["action"] == "block"

    cf.expect("DELETE", f"/zones/{ZONE}/rulesets/rs1/rules/r-list", answer=ok({}))
    cf.expect("DELETE", f"/accounts/{ACCOUNT}/rules/lists/list-1", answer=ok({}))
    services.mitigation_rollback(mitigation=mitigation, user=engineer)
    cf.assert_done()


def test_magic_firewall_rule_goes_to_the_accounts_magic_transit_phase(cf, run):
    phase = "magic_transit"
    cf.expect("GET", f"/accounts/{ACCOUNT}/rulesets/phases/{phase}/entrypoint", answer=ruleset("mt1", phase, []))
    cf.expect("POST", f"/accounts/{ACCOUNT}/rulesets/mt1/rules")
    _rule_answer(cf, "mt1", phase)
    # Account-wide (Magic Transit sees every customer's prefixes): it carries the customer's scope.
    expression = 'ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and ip.proto eq "udp"'
    mitigation = run(kind="firewall_rule", expression=expression)
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    body = cf.seen[-1][2]
    assert body["expression"] == expression
    assert body["action"] == "block" and body["enabled"] is True
    cf.assert_done()


def test_429_then_200_ends_applied_after_honouring_retry_after(cf, run):
    cf.expect(
        "POST",
        f"/zones/{ZONE}/firewall/access_rules/rules",
        status=429,
        headers={"Retry-After": "0"},
        answer={"success": False, "errors": [{"code": 10000, "message": "rate limited"}]},
    )
    cf.expect("POST", f"/zones/{ZONE}/firewall/access_rules/rules", status=503, answer={"success": False, "errors": []})
    cf.expect("POST", f"/zones/{ZONE}/firewall/access_rules/rules", answer=ok({"id": "ar-1"}))
    mitigation = run(kind="ip_access", value="198.18.0.7", expression="")
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    assert [r["status"] for r in mitigation.backend_answers["cloudflare"]["requests"]] == [429, 503, 200]
    cf.assert_done()


def test_400_ends_failed_with_the_apis_message(cf, run):
    cf.expect(
        "POST",
        f"/zones/{ZONE}/firewall/access_rules/rules",
        status=400,
        answer={
            "success": False,
            "errors": [{"code": 10009, "message": "firewallaccessrules.api.duplicate_of_existing"}],
        },
    )
    mitigation = run(kind="ip_access", value="198.18.0.7", expression="")
    assert mitigation.state == Mitigation.State.FAILED
    assert "firewallaccessrules.api.duplicate_of_existing" in mitigation.error
    assert len(cf.seen) == 1  # a 4xx is not retried
    cf.assert_done()


def test_retries_give_up_and_fail_the_mitigation(cf, run):
    for _ in range(4):
        cf.expect(
            "POST",
            f"/zones/{ZONE}/firewall/access_rules/rules",
            status=502,
            answer={"success": False, "errors": [{"message": "bad gateway"}]},
        )
    mitigation = run(kind="ip_access", value="198.18.0.7", expression="")
    assert mitigation.state == Mitigation.State.FAILED
    assert "after 4 attempts" in mitigation.error
    cf.assert_done()


def test_a_failure_half_way_deletes_what_was_created(cf, run, customer_a, engineer):
    blocklist = MitigationList.objects.create(name="acme_half", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.7.0/24\n", user=engineer)
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists", answer=ok({"id": "list-9"}))
    cf.expect(
        "POST",
        f"/accounts/{ACCOUNT}/rules/lists/list-9/items",
        status=400,
        answer={"success": False, "errors": [{"message": "invalid list item"}]},
    )
    cf.expect("DELETE", f"/accounts/{ACCOUNT}/rules/lists/list-9", answer=ok({}))
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    assert mitigation.state == Mitigation.State.FAILED and "invalid list item" in mitigation.error
    cf.assert_done()


def test_outbound_guard_refuses_a_private_api_base_unless_allowed(cf, run, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    settings.CLOUDFLARE_MAX_RETRIES = 0
    mitigation = run(kind="ip_access", value="198.18.0.7", expression="")
    assert mitigation.state == Mitigation.State.FAILED
    assert "non-public address" in mitigation.error
    assert cf.seen == []


# -- Ids go into API paths: checked at configuration and again before sending ---------------

BAD_ZONE = f"../../accounts/{ACCOUNT}"  # would turn a zone path into an account path


def test_a_malformed_zone_id_is_refused_when_the_target_is_configured(admin_user, client, customer_a):
    target = EnforcementTarget(name="cf-bad", kind="cloudflare", zone_id=BAD_ZONE, customer=customer_a)
    with pytest.raises(ValidationError) as refused:
        target.full_clean()
    assert "32 hexadecimal characters" in refused.value.message_dict["zone_id"][0]
    client.force_login(admin_user)
    answer = client.post(
        "/admin/mitigations/enforcementtarget/add/",
        {"name": "cf-bad", "kind": "cloudflare", "zone_id": "acme.example", "account_id": ACCOUNT, "enabled": "on"},
    )
    assert answer.status_code == 200
    assert "the Cloudflare zone id is 32 hexadecimal characters" in answer.content.decode()
    assert not EnforcementTarget.objects.filter(name="cf-bad").exists()


def test_a_target_saved_with_a_malformed_zone_id_is_refused_before_any_request(cf, draft, make_target, customer_a):
    zone = make_target("cloudflare", name="cf-acme", account_id=ACCOUNT, zone_id=BAD_ZONE, customer=customer_a)
    with pytest.raises(MitigationError, match="zone id is 32 hexadecimal characters"):
        draft(kind="ip_access", value="198.18.0.7", expression="", target=zone)
    assert cf.seen == []


def test_the_backend_refuses_a_path_with_a_malformed_id_before_sending(cf, settings):
    backend = CloudflareBackend(base_url=settings.CLOUDFLARE_API_BASE, token=TOKEN, max_retries=0)
    for path in (
        f"/zones/{BAD_ZONE}/firewall/access_rules/rules",
        "/zones/not-a-zone/rulesets",
        f"/accounts/{ACCOUNT}/rules/lists/x?y#z/items",
        f"/zones/{ZONE}/rulesets/phases/http_ratelimit/entrypoint?cursor=a/b",
    ):
        with pytest.raises(BackendError, match="refused to call Cloudflare"):
            backend.call("GET", path)
    assert cf.seen == []


def test_a_list_id_in_an_answer_that_is_not_an_id_never_reaches_a_path(cf, run, customer_a, engineer):
    blocklist = MitigationList.objects.create(name="acme_odd", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.7.0/24\n", user=engineer)
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists", answer=ok({"id": "../../../zones/x"}))
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    assert mitigation.state == Mitigation.State.FAILED
    assert "'..' is not a Cloudflare id" in mitigation.error
    assert [(method, path) for method, path, _ in cf.seen] == [("POST", f"/accounts/{ACCOUNT}/rules/lists")]
    cf.assert_done()

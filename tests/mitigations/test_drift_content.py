"""Drift by content: the check compares what each target holds with what the ledger recorded at
apply, not just whether a rule of that name exists. Real nft in namespaces named h15b-*, real
packets; and the recording stand-in for Cloudflare's API."""

from __future__ import annotations

import json
import subprocess

import pytest
from django.urls import reverse

from mitigations import services, tasks
from mitigations.models import BackendState, Mitigation, MitigationList

from .test_cloudflare import ACCOUNT, ZONE, _rule_answer, cf, ok, ruleset, run  # noqa: F401  (fixtures)
from .test_enforcement import ALLOWED, BLOCKED, SCOPE, UDP_PORT, Lab, _requirements

pytestmark = [pytest.mark.django_db]


class H15bLab(Lab):
    def __init__(self) -> None:
        super().__init__()
        tag = self.client.removeprefix("swc-")
        self.client, self.server = f"h15b-c-{tag}", f"h15b-s-{tag}"


@pytest.fixture
def lab():
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    lab = H15bLab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def nft(lab: H15bLab, *args: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", lab.server, "nft", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def handle_of(lab: H15bLab, comment: str) -> int:
    listing = json.loads(nft(lab, "-j", "list", "table", "inet", "shieldwall"))["nftables"]
    return next(i["rule"]["handle"] for i in listing if "rule" in i and i["rule"].get("comment") == comment)


def ledger_text(engineer_client) -> str:
    return engineer_client.get(reverse("mitigation-list")).content.decode()


def test_a_verdict_flipped_to_accept_is_drift_and_shown(lab, enforce, engineer_client):
    mitigation = enforce(expression=SCOPE + f"ip.src eq {BLOCKED} and udp.dstport eq {UDP_PORT}")
    assert lab.arrivals(BLOCKED, "udp", 5) == 0
    assert tasks.check_drift() == 0
    handle = handle_of(lab, mitigation.name)
    nft(lab, "replace", "rule", "inet", "shieldwall", "input", "handle", str(handle), "ip", "saddr", BLOCKED,
        "udp", "dport", str(UDP_PORT), "counter", "accept", "comment", f'"{mitigation.name}"')  # fmt: skip
    assert lab.arrivals(BLOCKED, "udp", 5) == 5  # the flip is real: the attack passes again
    assert tasks.check_drift() == 1
    mitigation.refresh_from_db()
    assert "verdict accept, the ledger says drop" in mitigation.drift["nftables"]
    page = ledger_text(engineer_client)
    assert "verdict accept, the ledger says drop" in page
    assert f"nftables:{lab.server}" in page and "Last checked" in page


def test_a_foreign_rule_in_shieldwalls_table_is_named(lab, enforce, engineer_client):
    enforce()
    nft(lab, "add", "rule", "inet", "shieldwall", "input", "ip", "saddr", ALLOWED, "drop")
    assert lab.arrivals(ALLOWED, "udp", 3) == 0
    tasks.check_drift()
    state = BackendState.objects.get(key=f"nftables:{lab.server}")
    assert f"foreign rule in chain input: ip saddr {ALLOWED} drop" in state.unexpected
    assert f"foreign rule in chain input: ip saddr {ALLOWED} drop" in ledger_text(engineer_client)


def test_a_member_added_to_a_mitigations_set_is_drift(lab, enforce, lab_customer, engineer, engineer_client):
    blocklist = MitigationList.objects.create(name="acme_h15b", customer=lab_customer)
    services.list_import(mitigation_list=blocklist, text=f"{BLOCKED}\n10.231.0.99\n", user=engineer)
    mitigation = enforce(expression=SCOPE + "ip.src in $acme_h15b")
    assert tasks.check_drift() == 0
    nft(lab, "add", "element", "inet", "shieldwall", f"{mitigation.name}-acme_h15b-v4", "{", ALLOWED, "}")
    assert lab.arrivals(ALLOWED, "udp", 3) == 0
    assert tasks.check_drift() == 1
    mitigation.refresh_from_db()
    assert f"{ALLOWED} added outside Shieldwall" in mitigation.drift["nftables"]
    assert f"{ALLOWED} added outside Shieldwall" in ledger_text(engineer_client)


def test_a_deleted_rule_is_drift_and_an_old_rule_with_the_same_id_is_not_taken_for_it(lab, enforce, engineer_client):
    mitigation = enforce()
    handle = handle_of(lab, mitigation.name)
    nft(lab, "delete", "rule", "inet", "shieldwall", "input", "handle", str(handle))
    # A rule left by another database whose sw-<id> is this mitigation's id: a different handle.
    stale = f"sw-{mitigation.pk}"
    nft(lab, "add", "rule", "inet", "shieldwall", "input", "ip", "saddr", "10.9.9.9", "drop", "comment", f'"{stale}"')
    assert stale != mitigation.name
    assert tasks.check_drift() == 1
    mitigation.refresh_from_db()
    assert "not installed" in mitigation.drift["nftables"]
    assert stale in BackendState.objects.get(key=f"nftables:{lab.server}").unexpected
    page = ledger_text(engineer_client)
    assert "not installed" in page and stale in page


CUSTOM = "http_request_firewall_custom"


def _applied_waf_rule(cf, run):  # noqa: F811
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", CUSTOM, "r9")
    mitigation = run(kind="waf_rule", expression='http.user_agent contains "masscan"')
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    return mitigation, cf.seen[-1][2]


def test_cloudflare_rule_whose_action_was_changed_is_drift(cf, run):  # noqa: F811
    mitigation, sent = _applied_waf_rule(cf, run)
    flipped = {**sent, "id": "r9", "action": "log"}
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", CUSTOM, [flipped]))
    assert services.mitigations_check_drift() == 1
    mitigation.refresh_from_db()
    assert "rule r9: action is 'log', the ledger says 'block'" in mitigation.drift["cloudflare"]
    cf.assert_done()


def test_cloudflare_rule_tagged_for_no_active_mitigation_is_named(cf, run):  # noqa: F811
    mitigation, sent = _applied_waf_rule(cf, run)
    stray = {"id": "r77", "description": "[sw-999999-zzzz] block old", "expression": "true", "action": "block"}
    customer_own = {"id": "r78", "description": "the customer's own rule", "expression": "true", "action": "log"}
    rules = [{**sent, "id": "r9"}, stray, customer_own]
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", CUSTOM, rules))
    assert services.mitigations_check_drift() == 0
    state = BackendState.objects.get(key="cloudflare")
    assert state.unexpected == [f"sw-999999-zzzz: rule r77 in /zones/{ZONE}/rulesets/rs1"]
    cf.assert_done()


def test_cloudflare_list_item_added_outside_shieldwall_is_drift(cf, run, customer_a, engineer):  # noqa: F811
    blocklist = MitigationList.objects.create(name="acme_cf", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.9.9\n", user=engineer)
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists", answer=ok({"id": "list-1"}))
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists/list-1/items", answer=ok({"operation_id": "op-1"}))
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", CUSTOM, "r-list")
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    items = ok([{"id": "i1", "ip": "198.18.9.9"}, {"id": "i2", "ip": "192.0.2.200"}])
    cf.expect("GET", f"/accounts/{ACCOUNT}/rules/lists/list-1/items", answer=items)
    rule = {**cf.seen[-1][2], "id": "r-list"}
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", CUSTOM, [rule]))
    assert services.mitigations_check_drift() == 1
    mitigation.refresh_from_db()
    assert "list list-1: 192.0.2.200 added outside Shieldwall" in mitigation.drift["cloudflare"]
    cf.assert_done()


# -- lists stay in sync ------------------------------------------------------------------------


def test_an_item_added_after_apply_is_dropped_within_one_check(lab, enforce, lab_customer, engineer, engineer_client):
    blocklist = MitigationList.objects.create(name="acme_sync", customer=lab_customer)
    services.list_import(mitigation_list=blocklist, text=f"{BLOCKED}\n", user=engineer)
    mitigation = enforce(kind="ip_list", expression="", mitigation_list=blocklist)
    assert lab.arrivals(BLOCKED, "udp", 3) == 0
    assert lab.arrivals(ALLOWED, "udp", 3) == 3

    item = services.list_item_add(mitigation_list=blocklist, value=ALLOWED, user=engineer, ttl_seconds=3600)
    assert tasks.check_drift() == 0  # what Shieldwall itself added is not drift
    assert lab.arrivals(ALLOWED, "udp", 3) == 0
    mitigation.refresh_from_db()
    assert mitigation.backend_answers["nftables"]["list_items"][ALLOWED] == "installed"
    page = engineer_client.get(blocklist.get_absolute_url()).content.decode()
    assert f"{mitigation.name} nftables: installed" in page

    services.list_item_remove(item=item, user=engineer)
    tasks.check_drift()
    assert lab.arrivals(ALLOWED, "udp", 3) == 3
    assert lab.arrivals(BLOCKED, "udp", 3) == 0


def test_an_expired_item_leaves_the_set_when_the_ledger_purges_it(lab, enforce, lab_customer, engineer):
    from datetime import timedelta

    from django.utils import timezone

    from mitigations.models import ListItem

    blocklist = MitigationList.objects.create(name="acme_exp", customer=lab_customer)
    services.list_import(mitigation_list=blocklist, text=f"{BLOCKED}\n", user=engineer)
    services.list_import(mitigation_list=blocklist, text=f"{ALLOWED}\n", user=engineer, ttl_seconds=3600)
    enforce(expression=SCOPE + "ip.src in $acme_exp")
    assert lab.arrivals(ALLOWED, "udp", 3) == 0
    ListItem.objects.filter(value=ALLOWED).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.list_items_purge_expired() == 1
    assert tasks.check_drift() == 0
    assert lab.arrivals(ALLOWED, "udp", 3) == 3
    assert lab.arrivals(BLOCKED, "udp", 3) == 0


def test_a_list_change_is_pushed_on_commit_without_waiting_for_the_check(
    lab, enforce, lab_customer, engineer, django_capture_on_commit_callbacks
):
    blocklist = MitigationList.objects.create(name="acme_now", customer=lab_customer)
    services.list_import(mitigation_list=blocklist, text=f"{BLOCKED}\n", user=engineer)
    enforce(kind="ip_list", expression="", mitigation_list=blocklist)
    with django_capture_on_commit_callbacks(execute=True):
        services.list_item_add(mitigation_list=blocklist, value=ALLOWED, user=engineer)
    assert lab.arrivals(ALLOWED, "udp", 3) == 0


def test_cloudflare_list_follows_items_added_and_removed(cf, run, customer_a, engineer):  # noqa: F811
    blocklist = MitigationList.objects.create(name="acme_cfsync", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.9.9\n", user=engineer)
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists", answer=ok({"id": "list-1"}))
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists/list-1/items", answer=ok({"operation_id": "op-1"}))
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", CUSTOM, "r-list")
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    rule = {**cf.seen[-1][2], "id": "r-list"}
    item = services.list_item_add(mitigation_list=blocklist, value="198.18.7.7", user=engineer, comment="late")
    path = f"/accounts/{ACCOUNT}/rules/lists/list-1/items"
    cf.expect("POST", path, body=[{"ip": "198.18.7.7", "comment": "late"}], answer=ok({"operation_id": "op-2"}))
    both = ok([{"id": "i1", "ip": "198.18.9.9"}, {"id": "i2", "ip": "198.18.7.7"}])
    cf.expect("GET", path, answer=both)
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", CUSTOM, [rule]))
    assert services.mitigations_check_drift() == 0

    services.list_item_remove(item=item, user=engineer)
    cf.expect("GET", path, answer=both)
    cf.expect("DELETE", path, body={"items": [{"id": "i2"}]}, answer=ok({"operation_id": "op-3"}))
    cf.expect("GET", path, answer=ok([{"id": "i1", "ip": "198.18.9.9"}]))
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", CUSTOM, [rule]))
    assert services.mitigations_check_drift() == 0
    mitigation.refresh_from_db()
    assert mitigation.backend_answers["cloudflare"]["list_items"] == {"198.18.9.9": "installed"}
    cf.assert_done()


# -- iptables / ipset ------------------------------------------------------------------------


def ipt(lab: H15bLab, *argv: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", lab.server, *argv], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_iptables_verdict_flip_foreign_rule_and_ipset_member_are_drift(lab, enforce, lab_customer, engineer):
    import shutil

    if shutil.which("iptables-restore") is None or shutil.which("ipset") is None:
        pytest.skip("iptables-restore and ipset are not installed")
    blocklist = MitigationList.objects.create(name="acme_ipt", customer=lab_customer)
    services.list_import(mitigation_list=blocklist, text=f"{BLOCKED}\n", user=engineer)
    listed = enforce("iptables", kind="ip_list", expression="", mitigation_list=blocklist)
    single = enforce("iptables", expression=SCOPE + f"ip.src eq 10.231.0.77 and udp.dstport eq {UDP_PORT}")
    assert lab.arrivals(BLOCKED, "udp", 3) == 0
    assert tasks.check_drift() == 0

    # A list item added in Shieldwall reaches the ipset within one check, and is not drift.
    services.list_item_add(mitigation_list=blocklist, value=ALLOWED, user=engineer)
    assert tasks.check_drift() == 0
    assert lab.arrivals(ALLOWED, "udp", 3) == 0

    rules = ipt(lab, "iptables", "-S", "SHIELDWALL").splitlines()
    position = next(i for i, line in enumerate(rules) if single.name in line)  # -S line 0 is "-N SHIELDWALL"
    ipt(lab, "iptables", "-R", "SHIELDWALL", str(position), "-s", "10.231.0.77", "-p", "udp", "--dport",
        str(UDP_PORT), "-m", "comment", "--comment", single.name, "-j", "ACCEPT")  # fmt: skip
    ipt(lab, "iptables", "-A", "SHIELDWALL", "-s", "10.231.0.66", "-j", "DROP")
    ipt(lab, "ipset", "add", f"{listed.name}-4", "10.231.0.55")
    assert tasks.check_drift() == 2
    single.refresh_from_db()
    listed.refresh_from_db()
    assert "verdict ACCEPT, the ledger says DROP" in single.drift["iptables"]
    assert "10.231.0.55 added outside Shieldwall" in listed.drift["iptables"]
    unexpected = BackendState.objects.get(key=f"iptables:{lab.server}").unexpected
    assert any(u.startswith("foreign rule: iptables -A SHIELDWALL -s 10.231.0.66/32 -j DROP") for u in unexpected)


def test_cloudflare_list_items_are_read_across_pages(cf, run, customer_a, engineer):  # noqa: F811
    blocklist = MitigationList.objects.create(name="acme_pages", customer=customer_a)
    services.list_import(mitigation_list=blocklist, text="198.18.9.9\n198.18.9.10\n", user=engineer)
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists", answer=ok({"id": "list-1"}))
    cf.expect("POST", f"/accounts/{ACCOUNT}/rules/lists/list-1/items", answer=ok({"operation_id": "op-1"}))
    cf.expect("GET", f"/zones/{ZONE}/rulesets/phases/{CUSTOM}/entrypoint", answer=ruleset("rs1", CUSTOM, []))
    cf.expect("POST", f"/zones/{ZONE}/rulesets/rs1/rules")
    _rule_answer(cf, "rs1", CUSTOM, "r-list")
    mitigation = run(kind="ip_list", expression="", mitigation_list=blocklist)
    rule = {**cf.seen[-1][2], "id": "r-list"}
    path = f"/accounts/{ACCOUNT}/rules/lists/list-1/items"
    first = {**ok([{"id": "i1", "ip": "198.18.9.9"}]), "result_info": {"cursors": {"after": "c2"}}}
    cf.expect("GET", path, answer=first)
    cf.expect("GET", f"{path}?cursor=c2", answer=ok([{"id": "i2", "ip": "198.18.9.10"}]))
    cf.expect("GET", f"/zones/{ZONE}/rulesets/rs1", answer=ruleset("rs1", CUSTOM, [rule]))
    assert services.mitigations_check_drift() == 0  # the second page holds the second item: nothing missing
    mitigation.refresh_from_db()
    assert not mitigation.drift
    cf.assert_done()

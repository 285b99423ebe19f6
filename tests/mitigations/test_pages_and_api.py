"""Pages, API, lists, the management command and the demo."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from console.demo import seed_customers, seed_users
from mitigations import demo, services
from mitigations.forms import ListImportForm
from mitigations.listformats import parse_list
from mitigations.models import ListItem, Mitigation, MitigationList

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- list formats

SPAMHAUS_DROP = """; Spamhaus DROP List 2024/05/01 - (c) 2024 The Spamhaus Project
; https://www.spamhaus.org/drop/drop.txt
; Last-Modified: Wed, 01 May 2024 12:00:00 GMT
1.10.16.0/20 ; SBL256894
1.19.0.0/16 ; SBL434604
2.56.192.0/22 ; SBL459831
"""

FIREHOL = """#
# firehol_level1
#
# ipv4 hash:net ipset
#
# A firewall blacklist composed from IP lists, providing
# maximum protection with minimum false positives.
#
0.0.0.0/8
5.188.10.0/23
31.184.237.0/24
45.9.20.0/24
"""


def test_spamhaus_drop_is_read_with_its_sbl_references():
    parsed = parse_list(SPAMHAUS_DROP)
    assert parsed.format == "spamhaus"
    assert parsed.items == [("1.10.16.0/20", "SBL256894"), ("1.19.0.0/16", "SBL434604"), ("2.56.192.0/22", "SBL459831")]
    assert parsed.errors == []


def test_firehol_netset_skips_its_comment_header():
    parsed = parse_list(FIREHOL)
    assert parsed.format == "firehol"
    assert [c for c, _ in parsed.items] == ["0.0.0.0/8", "5.188.10.0/23", "31.184.237.0/24", "45.9.20.0/24"]


def test_plain_list_normalises_dedups_and_reports_bad_lines():
    parsed = parse_list("198.51.100.7\n198.51.100.7/32\n10.1.2.3/8  # lab\n2001:db8::1\nnot-an-ip\n\n")
    assert parsed.items == [("198.51.100.7", ""), ("10.0.0.0/8", "lab"), ("2001:db8::1", "")]
    assert parsed.errors == ["line 5: 'not-an-ip' is not an address or CIDR"]


def test_import_adds_items_with_expiry_refreshes_existing_and_refuses_allowlisted(customer_a, engineer):
    mlist = services.list_create(name="acme_block", purpose="block", user=engineer, customer=customer_a)
    first = services.list_import(mitigation_list=mlist, text=SPAMHAUS_DROP, user=engineer, ttl_seconds=3600)
    assert (first["added"], first["updated"], first["format"]) == (3, 0, "spamhaus")
    again = services.list_import(mitigation_list=mlist, text="1.19.0.0/16\n8.8.8.0/24\n203.0.113.9\n", user=engineer)
    assert (again["added"], again["updated"]) == (0, 1)
    assert again["refused"] == ["8.8.8.0/24 overlaps a protected network", "203.0.113.9 overlaps a protected network"]
    assert ListItem.objects.get(mitigation_list=mlist, value="1.19.0.0/16").expires_at is None
    assert ListItem.objects.get(mitigation_list=mlist, value="1.10.16.0/20").comment == "SBL256894"


def test_import_refuses_a_time_to_live_past_any_date(api_as, customer_a, engineer):
    """A huge TTL overflowed the expiry date into a 500; the API, the page form and the service refuse it."""
    mlist = services.list_create(name="acme_ttl", purpose="block", user=engineer, customer=customer_a)
    huge = 124_643_611_466_772
    with pytest.raises(services.MitigationError, match="expire after"):
        services.list_import(mitigation_list=mlist, text="198.18.0.1\n", user=engineer, ttl_seconds=huge)
    response = api_as(engineer).post(
        f"/api/lists/{mlist.pk}/import/", {"text": "198.18.0.1", "ttl_seconds": huge}, format="json"
    )
    assert response.status_code == 400 and "ttl_seconds" in response.data
    assert not ListItem.objects.filter(mitigation_list=mlist).exists()
    assert not ListImportForm({"text": "198.18.0.1", "format": "auto", "ttl_minutes": huge}).is_valid()


def test_expired_list_items_are_purged_by_the_beat(customer_a, engineer):
    from datetime import timedelta

    from django.utils import timezone

    mlist = services.list_create(name="acme_tmp", purpose="block", user=engineer, customer=customer_a)
    services.list_import(mitigation_list=mlist, text="198.18.0.1\n198.18.0.2\n", user=engineer, ttl_seconds=60)
    ListItem.objects.filter(value="198.18.0.1").update(expires_at=timezone.now() - timedelta(seconds=1))
    services.mitigations_expire_due()
    assert list(mlist.items.values_list("value", flat=True)) == ["198.18.0.2"]


def test_ip_list_mitigation_compiles_items_with_their_own_timeouts(draft, customer_a, engineer, make_target):
    mlist = services.list_create(name="acme_bots", purpose="block", user=engineer, customer=customer_a)
    services.list_import(mitigation_list=mlist, text="198.18.0.0/24\n", user=engineer, ttl_seconds=600)
    on_nft = draft(kind="ip_list", expression="", mitigation_list=mlist, target=make_target("nftables"))
    assert "198.18.0.0/24 timeout" in on_nft.compiled["nftables"]["ruleset"]
    on_ipt = draft(kind="ip_list", expression="", mitigation_list=mlist, target=make_target("iptables"))
    assert "add sw-" in on_ipt.compiled["iptables"]["ipset"]


# --------------------------------------------------------------------------- API


def test_api_walks_a_mitigation_from_draft_to_rollback(
    api_as, engineer, senior, customer_a, django_capture_on_commit_callbacks
):
    eng, sen = api_as(engineer), api_as(senior)
    created = eng.post(
        "/api/mitigations/",
        {
            "customer": "acme",
            "kind": "firewall_rule",
            "expression": "ip.dst in {203.0.113.0/24} and ip.src eq 198.18.0.7",
            "targets": ["export"],
            "ttl_seconds": 900,
        },
        format="json",
    )
    assert created.status_code == 201, created.data
    pk = created.data["id"]
    assert created.data["state"] == "draft" and "nftables" in created.data["compiled"]["export"]

    simulated = eng.post(
        f"/api/mitigations/{pk}/simulate/",
        {
            "attack": [{"ip.src": "198.18.0.7", "ip.dst": "203.0.113.10"}] * 3
            + [{"ip.src": "198.18.0.8", "ip.dst": "203.0.113.10"}],
            "baseline": [{"ip.src": "192.0.2.77", "ip.dst": "203.0.113.10"}] * 10,
        },
        format="json",
    )
    assert simulated.status_code == 200, simulated.data
    assert simulated.data["simulation"]["attack"]["share"] == 0.75

    assert eng.post(f"/api/mitigations/{pk}/propose/").data["state"] == "proposed"
    refused = eng.post(f"/api/mitigations/{pk}/approve/", {}, format="json")
    assert refused.status_code == 403 and "senior" in refused.data["detail"]
    assert sen.post(f"/api/mitigations/{pk}/approve/", {"comment": "ok"}, format="json").data["state"] == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        applied = sen.post(f"/api/mitigations/{pk}/apply/")
    assert applied.status_code == 202
    assert sen.get(f"/api/mitigations/{pk}/").data["state"] == "active"
    extended = sen.post(f"/api/mitigations/{pk}/extend/", {"seconds": 600}, format="json")
    assert extended.data["ttl_seconds"] == 1500
    assert (
        eng.post(f"/api/mitigations/{pk}/rollback/", {"reason": "done"}, format="json").data["state"] == "rolled_back"
    )


def test_api_reports_the_position_of_a_malformed_rule(api_as, engineer, customer_a):
    response = api_as(engineer).post(
        "/api/mitigations/",
        {"customer": "acme", "kind": "waf_rule", "expression": 'tcp.dstport eq "x"', "targets": ["export"]},
        format="json",
    )
    assert response.status_code == 400
    assert int(response.data["position"]) >= 0 and response.data["expression"]


def test_api_state_is_read_only_and_outsiders_see_nothing(api_as, draft, engineer, outsider, customer_viewer):
    mitigation = draft()
    patch = api_as(engineer).patch(f"/api/mitigations/{mitigation.pk}/", {"state": "active"}, format="json")
    assert patch.status_code == 405
    for user in (outsider, customer_viewer):
        assert api_as(user).get(f"/api/mitigations/{mitigation.pk}/").status_code == 404
        assert api_as(user).get("/api/mitigations/").data["count"] == 0


def test_api_list_filters_and_does_not_grow_queries(api_as, draft, engineer, django_assert_max_num_queries):
    for _ in range(5):
        draft()
    draft(kind="waf_rule", expression='http.host eq "acme.example" and http.user_agent contains "sqlmap"')
    client = api_as(engineer)
    with django_assert_max_num_queries(8):
        response = client.get("/api/mitigations/?state=draft")
    assert response.data["count"] == 6
    assert client.get("/api/mitigations/?kind=waf_rule").data["count"] == 1
    assert client.get("/api/mitigations/?q=sqlmap").data["count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        '{"attack": [{"http.user_agent": "\\ud800"}]}',  # a lone surrogate: not Unicode
        '{"attack": [{"ip.src": "198.18.0.1"}, {"ip.src": 5}]}',  # one column, two types
        '{"attack": [{"tcp.dstport": 1000000000000000000000000000000}]}',  # past 64 bits
        '{"attack": [{"ip.src": {"x": 1}}]}',  # an object where the rule compares an address
        '{"attack": [{"ip.src": "198.18.0.1"}], "baseline": [{"http.user_agent": ["curl"]}]}',
    ],
)
def test_api_simulate_refuses_records_it_cannot_tabulate_with_400(api_as, senior, customer_a, body):
    """Client records that Arrow cannot tabulate or compare were a 500."""
    mitigation = services.mitigation_create(
        customer=customer_a,
        kind="waf_rule",
        user=senior,
        targets=["export"],
        expression='http.host eq "acme.example" and http.user_agent contains "curl" and ip.src in {198.18.0.0/24}',
        action="block",
        ttl_seconds=600,
    )
    client = api_as(senior)

    response = client.post(f"/api/mitigations/{mitigation.pk}/simulate/", data=body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert "one type" in response.content.decode()
    mitigation.refresh_from_db()
    assert mitigation.simulation is None


def test_api_lists_create_import_and_items(api_as, engineer, senior, customer_a):
    client = api_as(engineer)
    assert client.post("/api/lists/", {"name": "global_x"}, format="json").status_code == 400  # global: seniors
    created = client.post("/api/lists/", {"name": "acme_drop", "customer": "acme"}, format="json")
    assert created.status_code == 201
    pk = created.data["id"]
    result = client.post(f"/api/lists/{pk}/import/", {"text": FIREHOL}, format="json")
    assert result.data["added"] == 4 and result.data["format"] == "firehol"
    assert client.get(f"/api/lists/{pk}/items/").data["count"] == 4
    assert client.get("/api/lists/?customer=acme").data["count"] == 1
    assert client.get("/api/allowlist/").data["count"] >= 12


# --------------------------------------------------------------------------- pages


def test_ledger_shows_live_mitigations_with_countdown_and_actions(
    client, senior, proposed, django_capture_on_commit_callbacks
):
    mitigation = proposed()
    services.mitigation_approve(mitigation=mitigation, user=senior)
    with django_capture_on_commit_callbacks(execute=True):
        services.mitigation_apply(mitigation=mitigation, user=senior)
    waiting = proposed(expression="ip.dst in {203.0.113.0/24} and ip.src eq 198.18.0.99")
    client.force_login(senior)
    html = client.get(reverse("mitigation-list")).content.decode()
    assert f'data-mitigation="{mitigation.name}"' in html and "data-expires=" in html
    assert "Roll back" in html and "+1 h" in html
    assert waiting.name in html  # awaiting approval
    rows = client.get(reverse("mitigation-list"), {"state": "proposed"}, HTTP_HX_REQUEST="true").content.decode()
    assert waiting.name in rows and f'data-mitigation="{mitigation.name}"' not in rows


def test_propose_form_is_prefilled_scoped_and_creates_a_draft(client, engineer, customer_a):
    client.force_login(engineer)
    page = client.get(reverse("mitigation-new"), {"expression": "udp.srcport eq 123", "customer": "acme"}).content
    # The suggestion arrives limited to Acme's prefix, minus the sources no rule may drop.
    scoped = services.scoped_expression(customer_a, "udp.srcport eq 123")
    assert scoped.startswith("ip.dst in {203.0.113.0/24} and not ip.src in {") and scoped in page.decode()
    form = {"customer": "acme", "kind": "firewall_rule", "action": "block", "ttl_minutes": 30}
    refused = client.post(reverse("mitigation-new"), {**form, "expression": "udp.srcport eq 123"}).content.decode()
    assert "out of the customer&#x27;s scope" in refused and "240.0.0.1" in refused and "203.0.114.0" in refused
    assert not Mitigation.objects.exists()
    response = client.post(reverse("mitigation-new"), {**form, "expression": scoped})
    mitigation = Mitigation.objects.get()
    assert response.status_code == 302 and response["Location"] == mitigation.get_absolute_url()
    assert mitigation.enforcement_target is None and mitigation.targets == ["export"]
    detail = client.get(mitigation.get_absolute_url()).content.decode()
    assert "Propose for approval" in detail and "udp sport 123" in detail and "export only" in detail


def test_propose_form_shows_where_the_rule_is_wrong(client, engineer, customer_a):
    client.force_login(engineer)
    response = client.post(
        reverse("mitigation-new"),
        {
            "customer": "acme",
            "kind": "firewall_rule",
            "expression": "udp.srcport eq",
            "action": "block",
            "targets": ["export"],
            "ttl_minutes": 30,
        },
    )
    assert response.status_code == 200 and "position 14" in response.content.decode()


def test_approval_page_shows_simulation_compiled_forms_and_who_must_approve(
    client, senior, admin_user, draft, engineer, attack_table, baseline_table
):
    mitigation = draft()
    services.mitigation_simulate(mitigation=mitigation, attack_table=attack_table, baseline_table=baseline_table)
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    client.force_login(senior)
    html = client.get(reverse("mitigation-approval", args=[mitigation.pk])).content.decode()
    assert 'data-sim="attack">90%' in html and "2 of 100" in html
    assert "ip saddr 198.18.0.0/24 udp dport 53" in html
    # 2 % of the baseline is above the medium level (1 %): high, an admin approves, not a senior.
    assert 'data-blast="high"' in html and "an admin (incident lead)" in html and 'id="approve"' not in html
    # An admin must approve: the senior's approval is a role refusal.
    assert client.post(reverse("mitigation-approval", args=[mitigation.pk])).status_code == 403
    assert Mitigation.objects.get().approvals.count() == 0
    client.force_login(admin_user)
    assert 'id="approve"' in client.get(reverse("mitigation-approval", args=[mitigation.pk])).content.decode()
    client.post(reverse("mitigation-approval", args=[mitigation.pk]))
    assert Mitigation.objects.get().state == "approved"


def test_export_downloads_the_compiled_form(client, engineer, draft):
    mitigation = draft()
    client.force_login(engineer)
    response = client.get(reverse("mitigation-export", args=[mitigation.pk, "nftables"]))
    assert response["Content-Disposition"] == f'attachment; filename="{mitigation.name}.nft"'
    assert b"table inet shieldwall" in response.content


def test_pages_are_404_for_outsiders_and_customer_viewers(client, outsider, customer_viewer, draft):
    mitigation = draft()
    for user in (outsider, customer_viewer):
        client.force_login(user)
        for url in (reverse("mitigation-list"), mitigation.get_absolute_url(), reverse("mitigation-lists")):
            assert client.get(url).status_code == 404


def test_list_page_imports_an_uploaded_file(client, engineer, customer_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    mlist = MitigationList.objects.create(name="acme_up", customer=customer_a)
    client.force_login(engineer)
    client.post(
        reverse("mitigation-list-detail", args=[mlist.pk]),
        {
            "file": SimpleUploadedFile("drop.txt", SPAMHAUS_DROP.encode()),
            "format": "auto",
            "ttl_minutes": 60,
        },
    )
    assert mlist.items.count() == 3


# --------------------------------------------------------------------------- command and demo


def test_compile_rule_command_prints_each_target():
    out = StringIO()
    call_command("compile_rule", "ip.src eq 192.0.2.1", "--target", "nftables", stdout=out)
    assert 'ip saddr 192.0.2.1 counter drop comment "sw-0"' in out.getvalue()
    out = StringIO()
    call_command("compile_rule", "ip.src eq 192.0.2.1", "--target", "iptables", stdout=out)
    assert "-A SHIELDWALL -s 192.0.2.1" in out.getvalue()
    out = StringIO()
    call_command(
        "compile_rule",
        'http.user_agent contains "x"',
        "--target",
        "cloudflare",
        "--action",
        "managed_challenge",
        stdout=out,
    )
    assert "http_request_firewall_custom" in out.getvalue() and '"managed_challenge"' in out.getvalue()


def test_demo_seeds_lists_active_and_proposed_mitigations_idempotently(client):
    seed_customers()
    seed_users("demo password 123")
    assert demo.seed()["mitigations"] == 3
    assert demo.seed()["mitigations"] == 0
    states = sorted(Mitigation.objects.values_list("state", flat=True))
    assert states == ["active", "active", "proposed"]
    assert all(m.expires_at for m in Mitigation.objects.active())
    assert MitigationList.objects.get(name="harbor_botnet").items.count() == 3
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="sam"))
    ledger = client.get(reverse("mitigation-list")).content.decode()
    assert ledger.count('class="countdown"') == 2 and "Awaiting approval (1)" in ledger
    for m in Mitigation.objects.all():
        assert client.get(m.get_absolute_url()).status_code == 200
    assert client.get(reverse("mitigation-list-detail", args=[MitigationList.objects.get().pk])).status_code == 200

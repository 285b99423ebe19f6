"""The gate between a proposal and enforcement: scope, safety, simulation and the blast radius.

Every level asks for its approvers (low: one senior; medium: two; high or unknown: an
admin; above the ceiling: nobody), whatever path the approval takes (page, API, bulk).
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from alerts.models import Attack
from console.models import AuditEvent
from mitigations import services
from mitigations.backends import BackendError
from mitigations.backends.nftables import NftablesBackend
from mitigations.models import Mitigation
from mitigations.rules import RuleError
from mitigations.services import MitigationError
from tests.factories import AssetFactory
from tests.mitigations.conftest import traffic

pytestmark = pytest.mark.django_db
State = Mitigation.State
SCOPE = "ip.dst in {203.0.113.0/24} and "


def baseline_with(hits: int, rows: int = 1000, udp: bool = True):
    """A baseline of ``rows`` where ``hits`` rows match the default draft rule (198.18.0.0/24 → UDP 53)."""
    other = [("198.51.100.9", 17, 53)] * 20 if udp else []
    clean = [("192.0.2.200", 6, 443)] * (rows - hits - len(other))
    return traffic([("198.18.0.9", 17, 53)] * hits + other + clean)


@pytest.fixture
def simulated(draft, engineer, attack_table):
    def make(baseline, **kwargs) -> Mitigation:
        mitigation = draft(**kwargs)
        services.mitigation_simulate(
            mitigation=mitigation, user=engineer, attack_table=attack_table, baseline_table=baseline
        )
        return mitigation

    return make


# --------------------------------------------------------------------------- levels


def test_low_collateral_needs_one_senior(simulated, engineer, senior):
    mitigation = services.mitigation_propose(mitigation=simulated(baseline_with(1)), user=engineer)
    assert (mitigation.blast_radius, mitigation.required_approvals) == ("low", 1)
    services.mitigation_approve(mitigation=mitigation, user=senior)
    assert mitigation.state == State.APPROVED


def test_medium_collateral_needs_two_seniors(simulated, engineer, senior, senior2):
    mitigation = services.mitigation_propose(mitigation=simulated(baseline_with(5)), user=engineer)
    assert (mitigation.blast_radius, mitigation.required_approvals) == ("medium", 2)
    assert "0.50% of baseline" in mitigation.approval_reasons[0]
    services.mitigation_approve(mitigation=mitigation, user=senior)
    assert mitigation.state == State.PROPOSED
    services.mitigation_approve(mitigation=mitigation, user=senior2)
    assert mitigation.state == State.APPROVED


def test_high_collateral_needs_an_admin_and_no_number_of_seniors_will_do(
    simulated, engineer, senior, senior2, admin_user
):
    mitigation = services.mitigation_propose(mitigation=simulated(baseline_with(20)), user=engineer)
    assert mitigation.blast_radius == "high"
    for user in (senior, senior2):
        with pytest.raises(MitigationError, match="an admin"):
            services.mitigation_approve(mitigation=mitigation, user=user)
    assert mitigation.approvals.count() == 0
    services.mitigation_approve(mitigation=mitigation, user=admin_user)
    assert mitigation.state == State.APPROVED


def test_unknown_collateral_counts_as_high(simulated, engineer, senior, admin_user):
    # The baseline has no UDP at all: 0 % matched says nothing about a UDP rule.
    mitigation = simulated(baseline_with(0, udp=False))
    assert mitigation.simulation["baseline"]["share"] == 0
    assert mitigation.simulation["baseline"]["missing"] == ["no udp.dstport in the baseline"]
    assert services.collateral(mitigation) is None
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert mitigation.blast_radius == "high" and "collateral unknown" in mitigation.approval_reasons[0]
    with pytest.raises(MitigationError, match="an admin"):
        services.mitigation_approve(mitigation=mitigation, user=senior)
    services.mitigation_approve(mitigation=mitigation, user=admin_user)
    assert mitigation.state == State.APPROVED


def test_a_protocol_the_baseline_never_carries_is_unknown_collateral(simulated, customer_a):
    expression = services.scoped_expression(customer_a, 'ip.proto eq "udp"')
    mitigation = simulated(baseline_with(0, udp=False), expression=expression)
    assert "no protocol 17 traffic in the baseline" in mitigation.simulation["baseline"]["missing"]
    assert mitigation.blast_radius == "high"


def test_above_the_ceiling_is_refused_for_everyone(simulated, engineer, admin_user, attack_table):
    with pytest.raises(MitigationError, match="above the ceiling of 5.00%"):
        services.mitigation_propose(mitigation=simulated(baseline_with(100)), user=engineer)
    # Proposed while harmless, then re-simulated on a fuller baseline: the approval is refused.
    mitigation = services.mitigation_propose(mitigation=simulated(baseline_with(1)), user=engineer)
    services.mitigation_simulate(mitigation=mitigation, attack_table=attack_table, baseline_table=baseline_with(200))
    with pytest.raises(MitigationError, match="ceiling"):
        services.mitigation_approve(mitigation=mitigation, user=admin_user)
    mitigation.refresh_from_db()
    assert mitigation.state == State.PROPOSED


def test_levels_are_settings(simulated, engineer, settings):
    settings.MITIGATION_BLAST_RADIUS = {"low": 0.05, "medium": 0.1, "ceiling": 0.5}
    mitigation = services.mitigation_propose(mitigation=simulated(baseline_with(20)), user=engineer)
    assert mitigation.blast_radius == "low"


def test_an_unsimulated_proposal_is_simulated_on_the_attacks_samples(draft, engineer, senior, customer_a, tmp_path):
    attack = Attack.objects.create(
        customer=customer_a,
        target="203.0.113.10",
        title="DNS flood",
        started_at=timezone.now() - timedelta(minutes=5),
        last_seen=timezone.now(),
    )
    from traffic.models import TrafficSample

    for label, table in (("attack", traffic([("198.18.0.7", 17, 53)] * 50)), ("baseline", baseline_with(1))):
        path = tmp_path / f"{label}.parquet"
        pq.write_table(table, path)
        TrafficSample.objects.create(
            customer=customer_a,
            attack=attack,
            name=f"{label}.pcap",
            label=label,
            kind="pcap",
            original=f"traffic/originals/{label}.pcap",
            status="ready",
            columnar_path=str(path),
            record_count=table.num_rows,
        )
    mitigation = draft(attack=attack)
    assert mitigation.simulation is None
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert mitigation.simulation["attack"]["share"] == 1.0 and mitigation.blast_radius == "low"
    services.mitigation_approve(mitigation=mitigation, user=senior)
    assert mitigation.state == State.APPROVED


def test_with_no_traffic_at_all_the_proposal_is_unknown_and_an_admin_approves(
    draft, engineer, senior, senior2, admin_user
):
    mitigation = services.mitigation_propose(mitigation=draft(), user=engineer)
    assert mitigation.simulation["unavailable"].startswith("no traffic to simulate on")
    assert mitigation.blast_radius == "high" and mitigation.required_approvals == 1
    for user in (senior, senior2):
        with pytest.raises(MitigationError, match="an admin"):
            services.mitigation_approve(mitigation=mitigation, user=user)
    services.mitigation_approve(mitigation=mitigation, user=admin_user)
    assert mitigation.state == State.APPROVED


# --------------------------------------------------------------------------- no path around it


def test_no_path_skips_the_gate(client, api_as, draft, engineer, senior, senior2):
    """Page, API and bulk approval of an unsimulated (high) proposal by seniors: all refused."""
    by_page, by_api, by_bulk = (services.mitigation_propose(mitigation=draft(), user=engineer) for _ in range(3))
    client.force_login(senior)
    client.post(reverse("mitigation-approval", args=[by_page.pk]), {"comment": "lgtm"})
    response = api_as(senior).post(f"/api/mitigations/{by_api.pk}/approve/", {}, format="json")
    assert response.status_code == 403 and "an admin" in response.data["detail"]  # a role refusal
    bulk = (
        api_as(senior2)
        .post("/api/mitigations/bulk-approve/", {"ids": [by_bulk.pk, by_api.pk]}, format="json")
        .data["results"]
    )
    assert [r["state"] for r in bulk] == ["proposed", "proposed"] and all("an admin" in r["error"] for r in bulk)
    for mitigation in (by_page, by_api, by_bulk):
        mitigation.refresh_from_db()
        assert mitigation.state == State.PROPOSED and mitigation.approvals.count() == 0
    # Nor is a mitigation applied before it is approved, or created already approved through the API.
    # Not approved yet: a state conflict.
    assert api_as(senior).post(f"/api/mitigations/{by_api.pk}/apply/").status_code == 409
    created = api_as(engineer).post(
        "/api/mitigations/",
        {"customer": "acme", "kind": "firewall_rule", "expression": SCOPE + "ip.src eq 198.18.0.7", "propose": True},
        format="json",
    )
    assert created.status_code == 201 and created.data["state"] == "proposed"
    assert created.data["blast_radius"] == "high"


def test_bulk_approval_approves_what_the_gate_lets_through(api_as, simulated, engineer, senior):
    low = services.mitigation_propose(mitigation=simulated(baseline_with(0)), user=engineer)
    high = services.mitigation_propose(mitigation=simulated(baseline_with(30)), user=engineer)
    results = api_as(senior).post("/api/mitigations/bulk-approve/", {"ids": [low.pk, high.pk]}, format="json")
    assert [(r["id"], r["state"]) for r in results.data["results"]] == [(low.pk, "approved"), (high.pk, "proposed")]


def test_the_approvers_are_notified_by_mail_and_webhook_with_a_link(
    simulated, engineer, senior, admin_user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from tickets import tasks as ticket_tasks

    posted = []
    monkeypatch.setattr(ticket_tasks.post_webhook, "delay", lambda url, payload: posted.append((url, payload)))
    settings.NOTIFICATION_WEBHOOK_URLS = ["https://hooks.example/soc"]
    with django_capture_on_commit_callbacks(execute=True):
        high = services.mitigation_propose(mitigation=simulated(baseline_with(20)), user=engineer)
    link = f"{settings.SITE_URL}{reverse('mitigation-approval', args=[high.pk])}"
    assert [m.to for m in mail.outbox] == [[admin_user.email]]  # high: the admins, not the seniors
    assert link in mail.outbox[0].body and "an admin (incident lead)" in mail.outbox[0].body
    assert posted[0][0] == "https://hooks.example/soc" and posted[0][1]["url"] == link
    assert posted[0][1]["blast_radius"] == "high"

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        low = services.mitigation_propose(mitigation=simulated(baseline_with(1)), user=engineer)
    assert sorted(mail.outbox[0].to) == sorted([senior.email, admin_user.email])
    assert f"/mitigations/{low.pk}/approve/" in mail.outbox[0].body


# --------------------------------------------------------------------------- safety


def test_a_rule_matching_an_allowlisted_range_is_refused_until_an_admin_overrides_it(
    simulated, engineer, senior, admin_user
):
    mitigation = simulated(baseline_with(0), expression=SCOPE + "ip.src in {162.158.0.0/16} and tcp.dstport eq 443")
    with pytest.raises(MitigationError, match=r"162\.158\.0\.0 .*edge: origin pulls"):
        services.mitigation_propose(mitigation=mitigation, user=engineer)
    for user in (engineer, senior):
        with pytest.raises(MitigationError, match="only an admin"):
            services.mitigation_override_safety(mitigation=mitigation, user=user, reason="planned")
    with pytest.raises(MitigationError, match="say why"):
        services.mitigation_override_safety(mitigation=mitigation, user=admin_user, reason=" ")

    services.mitigation_override_safety(
        mitigation=mitigation, user=admin_user, reason="edge node 162.158.3.3 compromised, INC-7"
    )
    event = AuditEvent.objects.get(action="mitigation.safety_override", object_id=str(mitigation.pk))
    assert event.actor_name == admin_user.username
    assert event.after["safety_override"]["reason"] == "edge node 162.158.3.3 compromised, INC-7"
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert mitigation.state == State.PROPOSED


def test_an_override_covers_only_the_problems_it_was_given_for(draft, engineer, admin_user, customer_a):
    mitigation = draft(expression=SCOPE + "ip.src eq 8.8.8.8")
    services.mitigation_override_safety(mitigation=mitigation, user=admin_user, reason="resolver abuse")
    # A new allowlist entry makes a new problem: refused again.
    from mitigations.models import GlobalAllowlistEntry

    GlobalAllowlistEntry.objects.create(value="8.8.8.0/24", reason="Google DNS anycast")
    with pytest.raises(MitigationError, match="Google DNS anycast"):
        services.mitigation_propose(mitigation=mitigation, user=engineer)


def test_the_customers_allow_list_is_protected_too(draft, engineer, customer_a):
    allow = services.list_create(name="acme_partners", purpose="allow", user=engineer, customer=customer_a)
    services.list_item_add(mitigation_list=allow, value="198.18.0.64/26", user=engineer)
    with pytest.raises(MitigationError, match=r"allow list \$acme_partners"):
        services.mitigation_propose(mitigation=draft(), user=engineer)


# --------------------------------------------------------------------------- scope


def test_a_rule_that_could_hit_another_customer_is_refused_naming_the_addresses(
    draft, api_as, engineer, customer_a, customer_b
):
    AssetFactory(customer=customer_b, kind="prefix", value="198.51.100.0/24")
    with pytest.raises(MitigationError, match=r"198\.51\.100\.0, 198\.51\.100\.128.* \(Globex's prefix"):
        draft(expression='ip.proto eq "udp"')
    with pytest.raises(MitigationError, match="Globex's prefix 198.51.100.0/24"):
        draft(expression="ip.dst in {198.51.100.0/23} and udp.dstport eq 53")
    response = api_as(engineer).post(
        "/api/mitigations/",
        {"customer": "acme", "kind": "firewall_rule", "expression": "ip.dst in {203.0.112.0/23} and ip.len gt 1"},
        format="json",
    )
    assert response.status_code == 400
    assert (
        "203.0.112.255" in response.data["detail"] and "outside Acme Corp's 203.0.113.0/24" in response.data["detail"]
    )
    assert "limit it with ip.dst in {203.0.113.0/24}" in response.data["detail"]
    assert not Mitigation.objects.exists()


def test_the_providers_own_ranges_are_never_in_scope(draft, customer_a, settings):
    settings.PROVIDER_NETWORKS = ["203.0.113.128/25"]
    with pytest.raises(MitigationError, match="203.0.113.0/24 overlaps the provider's own range 203.0.113.128/25"):
        draft()


def test_l7_rules_are_limited_to_the_customers_hosts(draft, make_target, customer_a, customer_b):
    with pytest.raises(MitigationError, match=r"globex\.example \(Globex's zone"):
        draft(kind="waf_rule", expression='http.request.uri.path eq "/login"')
    assert draft(kind="waf_rule", expression='http.host eq "acme.example" and http.request.uri.path eq "/login"')
    # On the customer's own Cloudflare zone the zone is the scope.
    zone = make_target(
        "cloudflare",
        name="cf-acme",
        zone_id="023e105f4ecef8ad9ca31a8372d0c353",
        account_id="01a7362d577a6c3019a474fd6f485823",
        customer=customer_a,
    )
    assert draft(kind="waf_rule", expression='http.request.uri.path eq "/login"', target=zone)
    with pytest.raises(MitigationError, match="belongs to another customer"):
        draft(kind="waf_rule", expression='http.request.uri.path eq "/login"', customer=customer_b, target=zone)


def test_addresses_and_lists_on_a_packet_filter_only_match_traffic_to_the_customer(
    draft, make_target, customer_a, engineer
):
    nft = make_target("nftables")
    access = draft(kind="ip_access", value="198.18.0.7", expression="", target=nft)
    assert "ip daddr 203.0.113.0/24 ip saddr 198.18.0.7" in access.compiled["nftables"]["ruleset"]
    blocklist = services.list_create(name="acme_bad", purpose="block", user=engineer, customer=customer_a)
    services.list_item_add(mitigation_list=blocklist, value="198.18.0.0/24", user=engineer)
    listed = draft(kind="ip_list", expression="", mitigation_list=blocklist, target=make_target("iptables"))
    assert "-A SHIELDWALL -d 203.0.113.0/24 -m set --match-set" in listed.compiled["iptables"]["rules"]
    assert "--match-set" not in listed.compiled["iptables"]["rules6"]  # Acme has no IPv6 prefix


# --------------------------------------------------------------------------- targets


def test_no_target_means_export_only(draft):
    mitigation = draft()
    assert mitigation.enforcement_target is None and mitigation.targets == ["export"]


def test_a_bare_backend_name_is_no_target(draft):
    with pytest.raises(MitigationError, match="choose a configured enforcement target"):
        draft(targets=["nftables"])


def test_a_packet_filter_target_needs_a_namespace_or_a_command(draft, make_target):
    nowhere = make_target("nftables", name="nowhere", namespace="", command="")
    nowhere.namespace = ""
    nowhere.save()
    with pytest.raises(MitigationError, match="needs a network namespace or a configured command"):
        draft(target=nowhere)


def test_the_backends_refuse_to_touch_the_consoles_own_firewall():
    with pytest.raises(BackendError, match="refusing to change this host's firewall"):
        NftablesBackend().listing("")
    from mitigations.backends.iptables import IptablesBackend

    with pytest.raises(BackendError, match="refusing to change this host's firewall"):
        IptablesBackend().counters("")
    assert NftablesBackend(command="ssh -T scrub-1 sudo")._argv("", "list", "ruleset")[:4] == [
        "ssh",
        "-T",
        "scrub-1",
        "sudo",
    ]


def test_user_options_cannot_move_a_mitigation_to_another_namespace(draft, make_target):
    target = make_target("nftables", name="scrub", namespace="h15a-scrub")
    mitigation = draft(target=target, options={"namespace": "", "hook": "forward"})
    assert services._options(mitigation) == {"hook": "forward", "namespace": "h15a-scrub"}


def test_withdraw_is_refused_once_approved(api_as, simulated, engineer, senior):
    mitigation = services.mitigation_propose(mitigation=simulated(baseline_with(0)), user=engineer)
    services.mitigation_approve(mitigation=mitigation, user=senior)
    response = api_as(engineer).post(f"/api/mitigations/{mitigation.pk}/withdraw/")
    assert response.status_code == 400 and "only a proposal can be withdrawn" in response.data["detail"]
    mitigation.refresh_from_db()
    assert mitigation.state == State.APPROVED and mitigation.approvals.count() == 1


# --------------------------------------------------------------------------- what a rule matches, not its addresses


def with_ports(table, srcport: int = 40000):
    """The table with the UDP source port every UDP row of a client's traffic carries (others have none)."""
    import pyarrow as pa

    ports = [srcport if proto == 17 else None for proto in table["ip.proto"].to_pylist()]
    return table.append_column("udp.srcport", pa.array(ports, pa.int64()))


def test_a_rule_that_matches_every_packet_is_refused_saying_why_on_the_page(
    simulated, engineer, admin_user, client, customer_a
):
    # The reviewer's rule, on a baseline without TTLs (the simulation alone could only say "unknown").
    mitigation = simulated(baseline_with(0), expression=services.scoped_expression(customer_a, "ip.ttl ge 0"))
    assert mitigation.simulation["baseline"]["missing"] == ["no ip.ttl in the baseline"]
    assert mitigation.blast_radius == "refused"
    refused = "refused by its blast radius: it matches practically every packet to Acme Corp"
    with pytest.raises(MitigationError, match=refused) as info:
        services.mitigation_propose(mitigation=mitigation, user=admin_user)
    assert "ip.ttl is always ≥ 0" in str(info.value)
    mitigation.refresh_from_db()
    assert mitigation.state == State.DRAFT
    client.force_login(engineer)
    page = client.get(mitigation.get_absolute_url()).content.decode()
    assert "it matches practically every packet to Acme Corp: " in page
    assert "ip.ttl is always ≥ 0" in page


@pytest.mark.parametrize(
    ("clause", "why"),
    [
        ("ip.len gt 0", "ip.len is always > 0"),
        ("tcp.flags.syn or not tcp.flags.syn", "every packet to Acme Corp"),
        ("not ip.src eq 1.2.3.4", "`not ip.src eq 1.2.3.4` holds for all but a tiny fraction of ip.src addresses"),
    ],
)
def test_other_rules_that_match_all_traffic_are_refused(simulated, engineer, clean_baseline, customer_a, clause, why):
    mitigation = simulated(clean_baseline, expression=services.scoped_expression(customer_a, clause))
    with pytest.raises(MitigationError, match="refused by its blast radius") as info:
        services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert why in str(info.value)


def test_a_rule_that_matches_every_packet_of_a_protocol_needs_an_admin_and_says_so(
    simulated, engineer, senior, admin_user, client, customer_a
):
    expression = services.scoped_expression(customer_a, "tcp.dstport le 65535")
    mitigation = simulated(None, expression=expression)  # no baseline: the logic alone decides
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert mitigation.blast_radius == "high"
    reason = "it matches practically every TCP packet to Acme Corp: "
    assert mitigation.approval_reasons[0].startswith(reason)
    assert "tcp.dstport is always ≤ 65535" in mitigation.approval_reasons[0]
    client.force_login(senior)
    assert reason in client.get(reverse("mitigation-approval", args=[mitigation.pk])).content.decode()
    with pytest.raises(MitigationError, match="an admin"):
        services.mitigation_approve(mitigation=mitigation, user=senior)
    services.mitigation_approve(mitigation=mitigation, user=admin_user)
    assert mitigation.state == State.APPROVED


def test_a_rule_that_hits_practically_all_of_the_simulated_baseline_is_refused_whatever_the_ceiling(
    simulated, engineer, settings, customer_a
):
    # A country says nothing to the logic; the baseline (all from the US) shows it hits everything.
    settings.MITIGATION_BLAST_RADIUS = {"low": 0.001, "medium": 0.01, "ceiling": 1.0, "all": 0.99}
    expression = services.scoped_expression(customer_a, 'ip.src.country eq "US"')
    mitigation = simulated(baseline_with(0), expression=expression)
    with pytest.raises(MitigationError, match="it matches 100.00% of Acme Corp's baseline traffic: practically all"):
        services.mitigation_propose(mitigation=mitigation, user=engineer)


@pytest.mark.parametrize(
    ("clause", "named"),
    [
        ("ip.src eq 127.0.0.1", "127.0.0.1 as the source: that is loopback (127.0.0.0/8)"),
        ("ip.src eq ::1", "::1 as the source: that is loopback (::1/128)"),
        ("ip.src in {169.254.0.0/16} and udp.dstport eq 53", "169.254.0.0/16 as the source: that is link-local"),
        ("ip.src in {0.0.0.0/0} and udp.dstport eq 53", "0.0.0.0/0, which holds 0.0.0.0/8, as the source"),
        ("ip.src in {127.0.0.1..127.0.0.9}", "as the source: that is loopback"),
    ],
)
def test_a_rule_naming_loopback_unspecified_or_link_local_is_refused_and_no_admin_can_override_it(
    simulated, engineer, admin_user, clean_baseline, client, clause, named
):
    mitigation = simulated(clean_baseline, expression=SCOPE + clause)
    with pytest.raises(MitigationError, match="refused by the safety check") as info:
        services.mitigation_propose(mitigation=mitigation, user=admin_user)
    assert named in str(info.value)
    with pytest.raises(MitigationError, match="no admin override covers this"):
        services.mitigation_override_safety(mitigation=mitigation, user=admin_user, reason="trust me")
    client.force_login(engineer)
    assert named in client.get(mitigation.get_absolute_url()).content.decode()


def test_an_ip_access_rule_on_a_loopback_address_is_refused(draft, engineer):
    mitigation = draft(kind="ip_access", value="127.0.0.1", expression="")
    with pytest.raises(MitigationError, match="loopback"):
        services.mitigation_propose(mitigation=mitigation, user=engineer)


def test_a_rule_naming_the_providers_own_range_is_a_safety_problem_an_admin_may_override(
    simulated, engineer, admin_user, clean_baseline
):
    mitigation = simulated(clean_baseline, expression=SCOPE + "ip.src eq 104.16.0.9 and udp.dstport eq 53")
    with pytest.raises(MitigationError, match=r"104\.16\.0\.9 as the source: that is the provider's own range"):
        services.mitigation_propose(mitigation=mitigation, user=engineer)
    services.mitigation_override_safety(mitigation=mitigation, user=admin_user, reason="edge node 104.16.0.9 owned")
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert mitigation.state == State.PROPOSED


def test_a_scoped_legitimate_rule_still_needs_only_its_normal_approval(
    simulated, engineer, senior, clean_baseline, customer_a
):
    # NTP reflection toward Acme: UDP from source port 123, nothing in the customer's baseline.
    mitigation = simulated(
        with_ports(clean_baseline), expression=services.scoped_expression(customer_a, "udp.srcport eq 123")
    )
    assert mitigation.simulation["baseline"]["missing"] == []
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    assert (mitigation.blast_radius, mitigation.required_approvals) == ("low", 1)
    assert not any("every" in reason for reason in mitigation.approval_reasons)
    services.mitigation_approve(mitigation=mitigation, user=senior)
    assert mitigation.state == State.APPROVED


def test_a_rule_that_only_excludes_web_ports_is_not_called_all_traffic(simulated, clean_baseline, customer_a):
    # Ports are not spread evenly: "all TCP but 80 and 443" is most of nothing for a web customer.
    expression = services.scoped_expression(customer_a, "ip.proto eq 6 and not tcp.dstport in {80 443}")
    mitigation = simulated(clean_baseline, expression=expression)
    assert not any("every" in reason for reason in mitigation.approval_reasons)


def test_out_of_range_values_are_refused_when_written_never_at_the_target(draft):
    with pytest.raises(RuleError, match="tcp.dstport is a port number, 0 to 65535: 65536 is out of range"):
        draft(expression=SCOPE + "tcp.dstport eq 65536")
    with pytest.raises(MitigationError, match="an AS number is 0 to 4294967295"):
        draft(kind="ip_access", value="AS4294967296", expression="")
    assert not Mitigation.objects.exists()

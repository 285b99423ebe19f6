"""Traffic samples in the console: upload, parse once, summary pages, compare, simulate."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.shared import shared_file
from tests.traffic import gen
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(api, customer, path: Path, label: str, **extra):
    with path.open("rb") as fh:
        response = api.post(
            "/api/traffic-samples/",
            {"customer": customer.slug, "label": label, "file": fh, **extra},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    return TrafficSample.objects.get(pk=response.json()["id"])


def test_uploaded_capture_is_parsed_once_into_columns_and_a_summary(
    api_as, engineer, customer_a, django_capture_on_commit_callbacks
):
    path = shared_file("pcap/ddos/stopddos_amp.UDP.snmp.src161.pcapng")
    with django_capture_on_commit_callbacks(execute=True):
        sample = upload(api_as(engineer), customer_a, path, "attack")
    sample.refresh_from_db()
    assert sample.status == "ready" and sample.progress == 100
    assert sample.kind == "pcap"  # detected by its magic number
    assert sample.record_count == sample.summary["packets"] > 0
    assert pq.read_metadata(sample.columnar_path).num_rows == sample.record_count
    assert [v["name"] for v in sample.summary["vectors"] if v.get("kind", "attack") == "attack"][
        0
    ] == "snmp_amplification"
    assert sample.start_at is not None and sample.end_at >= sample.start_at
    # The original is not read again: analysis works with it gone.
    Path(sample.original.path).unlink()
    detail = api_as(engineer).get(f"/api/traffic-samples/{sample.pk}/").json()
    assert detail["summary"]["packets"] == sample.record_count


def test_sample_page_shows_vectors_charts_and_no_raw_injection(client, engineer, customer_a, tmp_path):
    client.force_login(engineer)
    path = tmp_path / "flood.pcap"
    import random

    gen.write_pcap(path, gen.merge(gen.syn_flood(2000, rng=random.Random(1))))
    with path.open("rb") as fh:
        sample = TrafficSample.objects.create(customer=customer_a, name="flood.pcap", kind="pcap", label="attack")
        sample.original.save("flood.pcap", fh)
    sample_parse(sample_id=sample.pk)
    page = client.get(reverse("traffic-detail", args=[sample.pk]))
    html = page.content.decode()
    assert "syn_flood" in html
    assert 'data-chart="chart-rate"' in html and 'id="chart-rate"' in html
    assert "<script>" not in html.replace("<script src=", "").replace("<script id=", "")


def test_log_sample_page_shows_the_top_value_tables(client, engineer, customer_a, tmp_path):
    """Log summaries count rows as ``requests`` (captures as ``count``): the tables take either."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    records = [
        gen.logpush_record(
            ts=start + timedelta(seconds=i),
            ip=f"198.18.0.{i % 5 + 1}",
            method="POST" if i % 3 else "GET",
            uri="/login",
            proto="HTTP/1.1",
            status=403,
            ua="curl/8.5.0",
            headers={"host": "acme.example", "user-agent": "curl/8.5.0"},
            cookies={"sid": str(i)},
            ja3="773906b0efdefa24a7f2b8eb6985bf37",
            ja4="",
            bot_score=2,
        )
        for i in range(30)
    ]
    path = tmp_path / "edge.jsonl"
    gen.write_jsonl(path, records)
    sample = TrafficSample.objects.create(customer=customer_a, name="edge.jsonl", kind="logpush", label="attack")
    with path.open("rb") as fh:
        sample.original.save("edge.jsonl", fh)
    sample_parse(sample_id=sample.pk)
    client.force_login(engineer)

    page = client.get(reverse("traffic-detail", args=[sample.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "<h2>Methods</h2>" in html
    assert "<td><code>POST</code></td><td>20</td>" in html


def test_truncated_capture_keeps_packets_before_the_break(customer_a, tmp_path):
    source = shared_file("pcap/benign/zeek_http_get.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(source[: len(source) - 37])
    sample = TrafficSample.objects.create(customer=customer_a, name="cut.pcap", kind="pcap")
    sample.original.save("cut.pcap", path.open("rb"))
    sample = sample_parse(sample_id=sample.pk)
    assert sample.status == "ready"
    assert sample.record_count > 0
    assert sample.errors and "packet" in sample.errors[0]


def test_file_that_is_no_capture_fails_with_a_clear_reason(customer_a, tmp_path):
    path = tmp_path / "notes.pcap"
    path.write_bytes(b"this is not a capture at all\n" * 10)
    sample = TrafficSample.objects.create(customer=customer_a, name="notes.pcap", kind="pcap")
    sample.original.save("notes.pcap", path.open("rb"))
    sample = sample_parse(sample_id=sample.pk)
    assert sample.status == "failed"
    assert sample.errors and ("pcap" in sample.errors[0].lower() or "capture" in sample.errors[0].lower())


def test_compare_labelled_login_bot_and_simulate_agree(
    api_as, engineer, customer_a, tmp_path, django_capture_on_commit_callbacks
):
    lines = gen.apache_lines(shared_file("httplogs/apache/elastic_examples_apache_logs.gz"))
    attack_path, baseline_path = tmp_path / "attack.jsonl", tmp_path / "baseline.jsonl"
    gen.write_jsonl(attack_path, gen.attack_records(lines))
    gen.write_jsonl(baseline_path, gen.baseline_records(lines))
    api = api_as(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        attack = upload(api, customer_a, attack_path, "attack")
        baseline = upload(api, customer_a, baseline_path, "baseline")
    attack.refresh_from_db()
    baseline.refresh_from_db()
    assert attack.kind == baseline.kind == "logpush"
    comparison = api.get(f"/api/traffic-samples/{attack.pk}/compare/", {"baseline": baseline.pk}).json()
    top = comparison["signatures"][0]
    assert top["attack_coverage"] >= 0.95
    assert top["baseline_collateral"] <= 0.01
    simulated = api.post(
        f"/api/traffic-samples/{attack.pk}/simulate/",
        {"expression": top["expression"], "baseline": baseline.pk},
        format="json",
    ).json()
    assert simulated["attack"]["share"] == pytest.approx(top["attack_coverage"], abs=1e-6)
    assert simulated["baseline"]["share"] == pytest.approx(top["baseline_collateral"], abs=1e-6)
    # The command line agrees too.
    out = _call_json("simulate_rule", top["expression"], "--attack", str(attack_path), "--baseline", str(baseline_path))
    assert out["attack"]["share"] == pytest.approx(top["attack_coverage"], abs=1e-6)
    assert out["baseline"]["share"] == pytest.approx(top["baseline_collateral"], abs=1e-6)


def _call_json(*args):
    import io

    buffer = io.StringIO()
    call_command(*args, "--json", stdout=buffer)
    return json.loads(buffer.getvalue())


def test_analyze_pcap_json_has_the_documented_keys():
    path = shared_file("pcap/ddos/ppa_dosattack.pcap")
    summary = _call_json("analyze_pcap", str(path))
    for key in (
        "packets",
        "bytes",
        "duration_s",
        "protocols",
        "top_sources",
        "top_destinations",
        "top_src_ports",
        "top_dst_ports",
        "tcp_flags",
        "per_second",
        "vectors",
    ):
        assert key in summary
    assert summary["packets"] == 100
    assert summary["protocols"] == {"tcp": 100}
    assert summary["vectors"][0]["name"] == "syn_flood"


def test_analyze_log_with_baseline_prints_signatures(tmp_path):
    lines = gen.apache_lines(shared_file("httplogs/apache/elastic_examples_apache_logs.gz"))
    gen.write_jsonl(tmp_path / "a.jsonl", gen.attack_records(lines, n=500))
    gen.write_jsonl(tmp_path / "b.jsonl", gen.baseline_records(lines))
    out = _call_json(
        "analyze_log", str(tmp_path / "a.jsonl"), "--format", "logpush", "--baseline", str(tmp_path / "b.jsonl")
    )
    assert out["summary"]["requests"] == 500
    assert out["comparison"]["signatures"]


def test_simulate_page_reports_rule_errors_with_position(client, engineer):
    client.force_login(engineer)
    page = client.post(reverse("traffic-simulate"), {"expression": 'tcp.dstport eq "80"'})
    assert page.status_code == 200
    assert b"position" in page.content


def test_import_traffic_command(customer_a, tmp_path, capsys):
    path = tmp_path / "dns.pcapng"
    shutil.copy(shared_file("pcap/benign/chrissanders_dns_axfr.pcapng"), path)
    call_command("import_traffic", str(path), "--customer", customer_a.slug, "--label", "baseline")
    sample = TrafficSample.objects.get()
    assert sample.status == "ready" and sample.label == "baseline"
    assert "records" in capsys.readouterr().out


def test_customer_viewer_and_outsider_cannot_see_samples(
    api_as, client, customer_viewer, outsider, customer_a, tmp_path
):
    path = tmp_path / "x.pcap"
    shutil.copy(shared_file("pcap/ddos/ppa_dosattack.pcap"), path)
    sample = TrafficSample.objects.create(customer=customer_a, name="x.pcap", kind="pcap")
    sample.original.save("x.pcap", path.open("rb"))
    for user in (customer_viewer, outsider):
        assert api_as(user).get(f"/api/traffic-samples/{sample.pk}/").status_code == 404
        client.force_login(user)
        assert client.get(reverse("traffic-detail", args=[sample.pk])).status_code == 404


def test_suricata_eve_flow_file_becomes_a_flow_sample(customer_a, tmp_path):
    source = shared_file("suricata/sashalarso_MSSIS-suricata_eve.json")
    events = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    flows = [e for e in events if e["event_type"] == "flow"]
    path = tmp_path / "eve.json"
    shutil.copy(source, path)
    sample = TrafficSample.objects.create(customer=customer_a, name="eve.json", kind="")
    sample.original.save("eve.json", path.open("rb"))
    from traffic.services import guess_kind

    TrafficSample.objects.filter(pk=sample.pk).update(kind=guess_kind(path))
    sample = sample_parse(sample_id=sample.pk)
    assert sample.kind == "eve_flow" and sample.status == "ready"
    assert sample.record_count == len(flows)
    assert sample.summary["packets"] == sum(f["flow"]["pkts_toserver"] + f["flow"]["pkts_toclient"] for f in flows)
    top = max({f["src_ip"] for f in flows}, key=lambda ip: (sum(1 for f in flows if f["src_ip"] == ip), ip))
    assert sample.summary["top_sources"][0]["flows"] == sum(1 for f in flows if f["src_ip"] == top)
    assert any("skipped" in e for e in sample.errors)
    # The columns are the rule language's: a rule simulates over flows like over packets.
    from traffic.services import rule_simulate, sample_table

    result = rule_simulate(expression="udp.dstport eq 53", attack=sample_table(sample), baseline=None)
    dns = sum(1 for f in flows if f.get("proto") == "UDP" and f.get("dest_port") == 53)
    assert result["attack"]["matched"] == dns


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [("/alerts/", "/alerts/"), ("https://evil.example/phish", None), ("//evil.example/phish", None)],
)
def test_upload_returns_to_a_next_on_this_site_only(client, engineer, customer_a, next_url, lands_on):
    client.force_login(engineer)
    with shared_file("pcap/benign/chrissanders_dns_axfr.pcapng").open("rb") as fh:
        response = client.post(
            reverse("traffic-upload"), {"customer": customer_a.slug, "label": "attack", "file": fh, "next": next_url}
        )
    assert response.status_code == 302
    sample = TrafficSample.objects.get(customer=customer_a)
    assert response["Location"] == (lands_on or sample.get_absolute_url())

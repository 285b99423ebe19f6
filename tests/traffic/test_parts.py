"""A large capture analysed in parts by separate Celery tasks (traffic/parts.py): the merged
summary must be the one a single pass gives, the records file the same, odd boundaries and
corrupt records handled as one reader would, and the sample page shows each part."""

from __future__ import annotations

import os
import random
import struct

import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from console.celery import ANALYSIS, app
from tests.traffic import gen
from traffic import parts
from traffic.models import TrafficSample, TrafficSamplePart
from traffic.parsers.pcap import PcapReader
from traffic.parsers.summary import summarize_pcap
from traffic.services import sample_parse

ONE = 1 << 62  # split_min_bytes no file reaches: summarize_pcap's single-process path


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """SYN flood, DNS and NTP reflection, TLS and every awkward shape, over a few seconds."""
    rng = random.Random(18)
    packets = gen.merge(
        gen.syn_flood(5000, rng=rng, pps=2000),
        gen.reflection(2500, 53, 1200, rng=rng, pps=1000),
        gen.reflection(700, 123, 440, rng=rng, pps=300),
        gen.tls_session(800, rng=rng, rate=300),
        gen.special_cases(),
    )
    path = tmp_path_factory.mktemp("parts") / "mixed.pcap"
    gen.write_pcap(path, packets)
    return path


def _in_parts(path, n: int, tmp_path) -> tuple[dict, int, list[tuple[int, int]]]:
    ranges = parts.plan(path, n)
    results = [
        parts.analyse_range(path, start, stop, last=i == len(ranges) - 1, records=tmp_path / f"p{i}.parquet")
        for i, (start, stop) in enumerate(ranges)
    ]
    merged = parts.merge(results, ranges)
    assert merged is not None
    summary, used = merged
    return summary, used, ranges


def test_a_capture_in_four_parts_gives_the_same_summary_as_in_one(capture, tmp_path):
    single = summarize_pcap(capture, split_min_bytes=ONE)
    summary, used, ranges = _in_parts(capture, 4, tmp_path)
    assert len(ranges) == used == 4
    # Cut at record starts, in order, covering the file.
    assert ranges[0][0] == 24 and ranges[-1][1] == os.path.getsize(capture)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert summary == single
    assert single["vectors"] and single["top_sources"] and single["packets"] > 9000


def test_records_of_the_parts_concatenate_to_the_single_pass_records(capture, tmp_path):
    ranges = parts.plan(capture, 4)
    paths = []
    for i, (start, stop) in enumerate(ranges):
        paths.append(tmp_path / f"p{i}.parquet")
        parts.analyse_range(capture, start, stop, last=i == len(ranges) - 1, records=paths[-1])
    rows = parts._concat_records(paths, tmp_path / "all.parquet")
    whole = pq.read_table(tmp_path / "all.parquet")
    single = [b.to_table() for b in PcapReader(capture)]
    assert rows == whole.num_rows == sum(t.num_rows for t in single)
    assert whole.column("frame.number").to_pylist() == list(range(1, rows + 1))
    assert whole.column("ip.src").to_pylist() == [v for t in single for v in t.column("ip.src").to_pylist()]


def test_a_boundary_that_is_no_record_start_sends_the_file_back_to_one_pass(capture):
    size = os.path.getsize(capture)
    good = PcapReader(capture).record_boundary(size // 2)
    for cut in (good + 1, good + 20):  # inside a record's header, inside its data
        ranges = [(24, cut), (cut, size)]
        results = [parts.analyse_range(capture, a, b, last=i == 1) for i, (a, b) in enumerate(ranges)]
        assert results[0].overran or results[0].end_offset != cut
        assert parts.merge(results, ranges) is None


def test_a_corrupt_record_in_a_middle_part_ends_the_capture_there_as_one_reader_does(capture, tmp_path):
    data = bytearray(capture.read_bytes())
    reader = PcapReader(capture)
    bad = reader.record_boundary(len(data) * 5 // 8)
    reader.close()
    struct.pack_into("<I", data, bad + 8, 10_000_000)  # caplen far past the snaplen
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(bytes(data))
    single = summarize_pcap(broken, split_min_bytes=ONE)
    summary, used, ranges = _in_parts(broken, 4, tmp_path)
    assert single["errors"] and "exceeds snaplen" in single["errors"][0]
    assert used < len(ranges), "parts after the corrupt record were merged"
    assert summary == single  # error text and its file-wide packet number included


def test_pcapng_and_small_files_stay_one_part(tmp_path):
    path = tmp_path / "tiny.pcap"
    gen.write_pcap(path, gen.special_cases()[:1])
    assert len(parts.plan(path, 4)) == 1
    ng = tmp_path / "x.pcapng"
    ng.write_bytes(gen.pcapng_bytes([(1, None)], [(0, ts, f, wire, "epb") for ts, f, wire in gen.special_cases()]))
    assert len(parts.plan(ng, 4)) == 1


def test_part_and_merge_tasks_run_on_the_analysis_queue():
    app.loader.import_default_modules()
    for name in ("traffic.tasks.analyse_part", "traffic.tasks.merge_parts"):
        assert app.amqp.router.route({}, name)["queue"].name == ANALYSIS


@pytest.mark.django_db
def test_sample_parsed_in_four_celery_parts_equals_one_pass(
    customer_a, capture, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TRAFFIC_PARTS_MIN_BYTES = 0
    samples = []
    for n in (1, 4):
        settings.TRAFFIC_PARTS = n
        sample = TrafficSample.objects.create(customer=customer_a, name=f"mixed-{n}.pcap", kind="pcap")
        sample.original.save("mixed.pcap", capture.open("rb"))
        with django_capture_on_commit_callbacks(execute=True):
            sample_parse(sample_id=sample.pk)
        sample.refresh_from_db()
        samples.append(sample)
    one, four = samples
    assert four.status == one.status == "ready" and four.progress == 100
    assert list(four.parts.values_list("status", flat=True)) == ["done"] * 4
    assert not one.parts.exists()
    assert four.summary == one.summary
    assert four.record_count == one.record_count
    assert (four.start_at, four.end_at) == (one.start_at, one.end_at)
    assert pq.read_table(four.columnar_path).equals(pq.read_table(one.columnar_path))
    assert not list((tmp_path / "media" / "traffic" / "parts").iterdir()), "part files left behind"


@pytest.mark.django_db
def test_sample_page_shows_progress_per_part(client, engineer, customer_a, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    sample = TrafficSample.objects.create(
        customer=customer_a, name="big.pcap", kind="pcap", status="parsing", progress=35
    )
    for i, (status, progress) in enumerate([("done", 100), ("running", 40), ("running", 0), ("waiting", 0)]):
        TrafficSamplePart.objects.create(
            sample=sample, index=i, start=24 + i * 1000, stop=1024 + i * 1000, status=status, progress=progress
        )
    client.force_login(engineer)
    html = client.get(reverse("traffic-detail", args=[sample.pk]) + "?progress=1", HTTP_HX_REQUEST="true")
    text = html.content.decode()
    assert 'id="sample-parts"' in text
    assert "part 1 of 4" in text and "Done · 100%" in text
    assert "part 2 of 4" in text and "Analysing · 40%" in text
    assert "part 4 of 4" in text and "Waiting · 0%" in text

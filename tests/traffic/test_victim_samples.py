"""Uploaded captures know their victim: the sample page, the automatic baseline, the comparison (issue 14)."""

from __future__ import annotations

import random
import re

import pytest
from django.urls import reverse

from tests.traffic import gen
from tests.traffic import vectors as V
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def parsed(customer, tmp_path, packets, name="syn.pcap", label="attack", attack=None):
    path = tmp_path / name
    gen.write_pcap(path, packets)
    sample = TrafficSample.objects.create(customer=customer, name=name, kind="pcap", label=label, attack=attack)
    with path.open("rb") as fh:
        sample.original.save(name, fh)
    return sample_parse(sample_id=sample.pk)


def syn_capture():
    rng = random.Random(1)
    return V.merge(V.normal(rng, 6), V.syn_flood_with_answers(rng))


def test_sample_page_names_the_victim_and_splits_sent_and_received(client, engineer, customer_a, tmp_path):
    sample = parsed(customer_a, tmp_path, syn_capture())
    assert sample.summary["victim"]["scope"] == ["203.0.113.0/24"]
    assert sample.summary["victim"]["source"] == "customer assets"
    assert sample.summary["vectors"][0]["name"] == "syn_flood"
    client.force_login(engineer)
    html = client.get(reverse("traffic-detail", args=[sample.pk])).content.decode()
    assert "<code>203.0.113.0/24</code>" in html and "customer assets" in html
    assert "SYN flood from 6,000 sources to tcp/80, answered by 5,400 SYN-ACKs from the victim" in html
    sources = html.split('id="top-sources"')[1].split("</table>")[0]
    assert V.VICTIM not in sources  # the victim's 5,400 answers do not make it an attack source
    victim = html.split('id="victim-addresses"')[1].split("</table>")[0]
    row = re.search(
        rf"<code>{re.escape(V.VICTIM)}</code></td><td>([\d,]+)</td><td>[\d,]+</td><td>([\d,]+)</td>", victim
    )
    assert row and row.groups() == ("6,120", "5,520")  # received, sent

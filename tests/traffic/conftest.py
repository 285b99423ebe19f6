"""Shared fixtures for the traffic parser tests (plain pytest, no database)."""

from __future__ import annotations

import pytest

from tests.shared import SHARED_DATA
from tests.traffic import gen

APACHE_LOG = "httplogs/apache/elastic_examples_apache_logs.gz"


@pytest.fixture(scope="session")
def apache_lines() -> list[str]:
    path = SHARED_DATA / APACHE_LOG
    if not path.exists():
        pytest.skip(f"shared data file {APACHE_LOG} is not present at {SHARED_DATA}")
    return gen.apache_lines(path)


@pytest.fixture(scope="session")
def logpush_pair(tmp_path_factory, apache_lines):
    """(attack.jsonl, baseline.jsonl): a /login bot built from the real Apache log."""
    d = tmp_path_factory.mktemp("logs")
    attack, baseline = d / "attack.jsonl", d / "baseline.jsonl"
    gen.write_jsonl(attack, gen.attack_records(apache_lines))
    gen.write_jsonl(baseline, gen.baseline_records(apache_lines))
    return attack, baseline

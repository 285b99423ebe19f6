"""A log comparison reads only the columns it compares, and its result is what reading every column gave (issue 20)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from traffic.models import TrafficSample
from traffic.parsers import compare as compare_module
from traffic.parsers.compare import compare
from traffic.services import _jsonable, sample_parse, samples_compare

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _parsed(customer, path, label: str) -> TrafficSample:
    sample = TrafficSample.objects.create(customer=customer, name=path.name, kind="logpush", label=label)
    with path.open("rb") as fh:
        sample.original.save(path.name, fh)
    return sample_parse(sample_id=sample.pk)


def test_a_log_comparison_on_its_columns_equals_one_on_every_column(customer_a, logpush_pair, monkeypatch):
    attack_path, baseline_path = logpush_pair
    attack = _parsed(customer_a, attack_path, "attack")
    baseline = _parsed(customer_a, baseline_path, "baseline")
    assert attack.status == baseline.status == TrafficSample.Status.READY
    every = {s.pk: pq.read_table(s.columnar_path) for s in (attack, baseline)}
    assert "http.request.headers" in every[attack.pk].column_names  # the header values were stored

    read: list[list[str]] = []
    real, real_pq = compare_module.read_parquet_columns, pq.read_table

    def spy(path, columns):  # noqa: ANN001, ANN202
        read.append(columns)
        table = real(path, columns)
        assert table.equals(real_pq(path, columns=columns))  # DuckDB's read is pyarrow's
        return table

    monkeypatch.setattr(compare_module, "read_parquet_columns", spy)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("a comparison read every column"))
    ours = samples_compare(attack=attack, baseline=baseline)

    expected = _jsonable(compare(every[attack.pk], every[baseline.pk]))
    expected["baseline"] = ours["baseline"]
    assert ours == expected
    assert ours["attack_rows"] == every[attack.pk].num_rows and ours["signatures"]  # a real comparison
    assert len(read) == 2 and all("http.request.headers" not in cols for cols in read)


def test_a_damaged_columnar_file_is_a_clear_error_not_a_crash(tmp_path) -> None:
    """Its footer intact, its data pages overwritten: the views catch ValueError, as pyarrow's ArrowInvalid was."""
    import pyarrow as pa

    path = tmp_path / "sample.parquet"
    pq.write_table(pa.table({"http.user_agent": [f"agent {i}" for i in range(5000)]}), path, compression="zstd")
    data = bytearray(path.read_bytes())
    data[4:2000] = b"\xff" * 1996
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="cannot be read"):
        compare_module.read_parquet_columns(path, ["http.user_agent"])

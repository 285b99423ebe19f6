"""Traffic samples: storing, parsing once into a columnar file, comparing, simulating rules."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.formats.base import storable
from console.audit import audit_record
from traffic.models import TrafficSample
from traffic.parsers.bounded import Limits
from traffic.parsers.compare import compare
from traffic.parsers.eveflow import read_eve_flows, summarize_flows
from traffic.parsers.httplog import LogError, read_log, summarize_log
from traffic.parsers.pcap import PcapError, iter_batches
from traffic.parsers.summary import summarize_pcap

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


def guess_kind(path: Path) -> str:
    """pcap by magic number, Logpush by a JSON first line, else combined log format."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head[:4] in PCAP_MAGICS:
        return TrafficSample.Kind.PCAP
    if head[:2] == b"\x1f\x8b":
        import gzip

        with gzip.open(path, "rb") as fh:
            head = fh.read(4096)
    first = next((line for line in head.splitlines() if line.strip()), b"")
    if first.lstrip().startswith(b"{"):
        return TrafficSample.Kind.EVE_FLOW if b'"event_type"' in head else TrafficSample.Kind.LOGPUSH
    return TrafficSample.Kind.COMBINED


def sample_create(
    *,
    customer,
    name: str,
    fileobj,
    label: str = "unknown",
    kind: str = "",
    attack=None,
    user=None,  # noqa: ANN001
) -> TrafficSample:
    """Keep the uploaded file (streamed to disk by Django's upload handlers) and parse it in Celery."""
    sample = TrafficSample(customer=customer, attack=attack, name=name[:255], label=label, kind=kind or "pcap")
    sample.created_by = user
    sample.original.save(Path(name).name[:100] or "sample", File(fileobj), save=False)
    sample.size = sample.original.size
    if not kind:
        sample.kind = guess_kind(Path(sample.original.path))
    sample.save()
    audit_record(
        action="traffic.upload",
        obj=sample,
        after={"name": sample.name, "kind": sample.kind, "label": sample.label, "size": sample.size},
        actor=user,
    )
    from traffic.tasks import parse_sample

    transaction.on_commit(lambda: parse_sample.delay(sample.pk))
    return sample


def upload_limits() -> Limits:
    """The bounds every uploaded log is read within (settings TRAFFIC_MAX_*)."""
    return Limits(
        max_line=settings.TRAFFIC_MAX_LINE_BYTES,
        max_decompressed=settings.TRAFFIC_MAX_DECOMPRESSED_BYTES,
        max_log=settings.TRAFFIC_MAX_LOG_BYTES,
    )


def columnar_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "traffic" / "columnar"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _set_progress(sample_id: int, percent: int) -> None:
    TrafficSample.objects.filter(pk=sample_id).update(progress=max(0, min(100, percent)))


def sample_parse(*, sample_id: int) -> TrafficSample | None:
    """Parse a sample once: records to Parquet, summary to the database. Idempotent.

    A corrupt or truncated file keeps what parsed before the break and names where it
    broke; a file that is no capture or log at all fails the sample with that reason.
    """
    claimed = TrafficSample.objects.filter(
        pk=sample_id, status__in=[TrafficSample.Status.UPLOADED, TrafficSample.Status.FAILED]
    ).update(
        status=TrafficSample.Status.PARSING,
        progress=0,
        parse_started_at=timezone.now(),
        parse_attempts=F("parse_attempts") + 1,
    )
    if not claimed:
        return TrafficSample.objects.filter(pk=sample_id).first()
    sample = TrafficSample.objects.get(pk=sample_id)
    source = Path(sample.original.path)
    target = columnar_dir() / f"sample-{sample.pk}.parquet"
    try:
        if sample.kind == TrafficSample.Kind.PCAP:
            summary, errors, records = _parse_pcap(sample.pk, source, target)
        elif sample.kind == TrafficSample.Kind.EVE_FLOW:
            flows = read_eve_flows(source, limits=upload_limits())
            pq.write_table(flows.table, target, compression="zstd")
            summary, errors, records = summarize_flows(flows.table), flows.errors, flows.table.num_rows
        else:
            summary, errors, records = _parse_log(sample, source, target)
    except (PcapError, LogError, OSError) as exc:
        TrafficSample.objects.filter(pk=sample.pk).update(
            status=TrafficSample.Status.FAILED, errors=[str(exc)[:2000]], progress=100
        )
        sample.refresh_from_db()
        return sample
    start, end = _time_range(summary)
    TrafficSample.objects.filter(pk=sample.pk).update(
        status=TrafficSample.Status.READY,
        progress=100,
        errors=storable([str(e)[:2000] for e in errors][:50]),
        record_count=records,
        # Top values are attacker-written (user agents, paths): some hold text PostgreSQL refuses.
        summary=storable(summary),
        columnar_path=str(target),
        start_at=start,
        end_at=end,
        parsed_at=timezone.now(),
    )
    sample.refresh_from_db()
    if sample.attack_id:
        # Attack summaries (top sources) read attached samples: recompute it.
        from alerts.services import attack_schedule_summary

        attack_id = sample.attack_id
        transaction.on_commit(lambda: attack_schedule_summary(attack_id=attack_id))
    return sample


PARSE_MAX_ATTEMPTS = 2  # the first attempt and one retry


def samples_sweep_stuck(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Samples left in "parsing" past the time limit (their job died or hung): retry once, then fail.

    A worker killed mid-parse (OOM, deploy, SIGKILL) never writes a result; the sample would
    say "parsing" for good. Past ``TRAFFIC_PARSE_TIME_LIMIT`` seconds the attempt is over: the
    first time the sample goes back to the queue, the second time it fails with the reason.
    Each change is a conditional update on the row's attempt start, so a job that finishes
    at the same moment wins and a second sweeper changes nothing.
    """
    from traffic.tasks import parse_sample

    now = now or timezone.now()
    limit = settings.TRAFFIC_PARSE_TIME_LIMIT
    cutoff = now - dt.timedelta(seconds=limit)
    stuck = TrafficSample.objects.filter(status=TrafficSample.Status.PARSING).filter(
        Q(parse_started_at__lt=cutoff) | Q(parse_started_at__isnull=True, created_at__lt=cutoff)
    )
    counts = {"retried": 0, "failed": 0}
    for sample in stuck.only("pk", "parse_started_at", "parse_attempts", "errors"):
        attempt = max(sample.parse_attempts, 1)
        reason = f"analysis attempt {attempt} did not finish within {limit:,} s (its job died or hung)"
        same = TrafficSample.objects.filter(
            pk=sample.pk, status=TrafficSample.Status.PARSING, parse_started_at=sample.parse_started_at
        )
        if attempt < PARSE_MAX_ATTEMPTS:
            changed = same.update(status=TrafficSample.Status.UPLOADED, progress=0, errors=[reason + "; retried"])
            if changed:
                counts["retried"] += 1
                pk = sample.pk
                transaction.on_commit(lambda pk=pk: parse_sample.delay(pk))
        else:
            changed = same.update(
                status=TrafficSample.Status.FAILED,
                progress=100,
                errors=[f"{reason}, after {attempt} attempts: marked failed. Upload a smaller or split sample."],
            )
            counts["failed"] += changed
        if changed:
            audit_record(
                action="traffic.parse_stuck",
                obj=TrafficSample.objects.get(pk=sample.pk),
                after={"attempt": attempt, "outcome": "retried" if attempt < PARSE_MAX_ATTEMPTS else "failed"},
            )
    return counts


def _parse_pcap(sample_id: int, source: Path, target: Path) -> tuple[dict, list[str], int]:
    summary = summarize_pcap(
        source, progress=lambda done, total: _set_progress(sample_id, int(50 * done / max(total, 1)))
    )
    reader = iter_batches(
        source, progress=lambda done, total: _set_progress(sample_id, 50 + int(50 * done / max(total, 1)))
    )
    writer = None
    records = 0
    try:
        for batch in reader:
            table = batch.to_table()
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema, compression="zstd")
            writer.write_table(table)
            records += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        from traffic.parsers.pcap import empty_table

        pq.write_table(empty_table(), target)
    return summary, list(summary.get("errors") or reader.errors), records


def _parse_log(sample: TrafficSample, source: Path, target: Path) -> tuple[dict, list[str], int]:
    result = read_log(source, fmt=sample.kind, limits=upload_limits())
    _set_progress(sample.pk, 70)
    pq.write_table(result.table, target, compression="zstd")
    summary = summarize_log(result.table)
    return _jsonable(summary), list(result.errors), result.table.num_rows


def _jsonable(value: Any) -> Any:
    """Summaries go into a JSON column: numpy scalars and datetimes become plain values."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _time_range(summary: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = summary.get("start") or summary.get("first_ts")
    end = summary.get("end") or summary.get("last_ts")
    per_second = summary.get("per_second") or summary.get("requests_per_second") or []
    if (start is None or end is None) and per_second:
        start, end = per_second[0].get("t"), per_second[-1].get("t")

    def to_dt(value: Any) -> dt.datetime | None:
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        return None

    return to_dt(start), to_dt(end)


def sample_table(sample: TrafficSample, columns: list[str] | None = None) -> pa.Table:
    """The parsed records of a ready sample (never re-parses the original)."""
    if sample.status != TrafficSample.Status.READY or not sample.columnar_path:
        raise ValueError(f"sample {sample.pk} is not parsed yet ({sample.get_status_display()})")
    return pq.read_table(sample.columnar_path, columns=columns)


def samples_compare(*, attack: TrafficSample, baseline: TrafficSample) -> dict:
    """Attack against baseline: values side by side, ranked attributes, candidate rules."""
    if attack.customer_id != baseline.customer_id:
        raise ValueError("compare samples of the same customer")
    if attack.is_packets != baseline.is_packets:
        raise ValueError("compare packets with packets and requests with requests")
    return _jsonable(compare(sample_table(attack), sample_table(baseline)))


def rule_simulate(*, expression: str, attack: pa.Table | None, baseline: pa.Table | None, examples: int = 10) -> dict:
    """A rule evaluated over attack and baseline records: what it catches and what it costs."""
    from mitigations.rules import evaluate, parse

    rule = parse(expression)
    result: dict[str, Any] = {"expression": rule.to_text(), "layer": rule.layer}
    for name, table in (("attack", attack), ("baseline", baseline)):
        if table is None:
            continue
        mask = evaluate(rule, table)
        matched = int(mask.sum())
        result[name] = {
            "records": table.num_rows,
            "matched": matched,
            "share": matched / table.num_rows if table.num_rows else 0.0,
            "top_matched": _top_matched(table.filter(pa.array(mask)), rule.fields),
        }
        if name == "baseline" and matched:
            hit = table.filter(pa.array(mask)).slice(0, examples)
            keep = [c for c in hit.column_names if c in rule.fields or c in EXAMPLE_COLUMNS]
            result[name]["examples"] = _jsonable(hit.select(keep).to_pylist())
    return result


EXAMPLE_COLUMNS = (
    "ts",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "tcp.dstport",
    "udp.srcport",
    "http.host",
    "http.request.method",
    "http.request.uri.path",
    "http.user_agent",
)


def _top_matched(table: pa.Table, fields: frozenset[str], top: int = 5) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(fields):
        if name not in table.column_names or pa.types.is_list(table.schema.field(name).type):
            continue
        counts = Counter(v for v in table.column(name).to_pylist() if v is not None)
        out[name] = [{"value": _jsonable(v), "count": n} for v, n in counts.most_common(top)]
    return out


def sample_simulate(*, expression: str, attack: TrafficSample | None, baseline: TrafficSample | None) -> dict:
    return rule_simulate(
        expression=expression,
        attack=sample_table(attack) if attack else None,
        baseline=sample_table(baseline) if baseline else None,
    )


def samples_prune(*, now: dt.datetime | None = None) -> int:
    """Retention: samples older than the configured period lose their files (the row stays, marked)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.RETENTION_TRAFFIC_DAYS)
    pruned = 0
    for sample in TrafficSample.objects.filter(created_at__lt=cutoff).exclude(status=TrafficSample.Status.FAILED):
        if sample.columnar_path:
            Path(sample.columnar_path).unlink(missing_ok=True)
        if sample.original:
            sample.original.delete(save=False)
        TrafficSample.objects.filter(pk=sample.pk).update(
            status=TrafficSample.Status.FAILED, columnar_path="", errors=["pruned by the retention policy"]
        )
        pruned += 1
    return pruned


def attack_sample_pairs(*, attack) -> list[tuple[TrafficSample, TrafficSample]]:  # noqa: ANN001
    """Each ready attack sample of an attack with the customer's newest ready baseline of the same kind."""
    pairs = []
    samples = TrafficSample.objects.filter(attack=attack, status=TrafficSample.Status.READY).exclude(
        label=TrafficSample.Label.BASELINE
    )
    for sample in samples[:4]:
        kinds = (
            [TrafficSample.Kind.PCAP, TrafficSample.Kind.EVE_FLOW]
            if sample.is_packets
            else [TrafficSample.Kind.LOGPUSH, TrafficSample.Kind.COMBINED]
        )
        baseline = (
            TrafficSample.objects.filter(
                customer_id=attack.customer_id,
                label=TrafficSample.Label.BASELINE,
                status=TrafficSample.Status.READY,
                kind__in=kinds,
            )
            .order_by("-created_at")
            .first()
        )
        if baseline is not None:
            pairs.append((sample, baseline))
    return pairs

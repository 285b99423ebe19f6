"""Traffic samples: storing, parsing once into a columnar file, comparing, simulating rules."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.formats.base import storable
from console.audit import audit_record
from console.lazy import lazy_module
from traffic import geo
from traffic.models import TrafficSample
from traffic.parsers.bounded import Limits

# Imported on first use: only parsing, comparing and simulating need them, not every process
# that loads the URLconf (console/lazy.py). The parsers are imported inside the functions.
np = lazy_module("numpy")
pa = lazy_module("pyarrow")
pc = lazy_module("pyarrow.compute")
pq = lazy_module("pyarrow.parquet")

if TYPE_CHECKING:
    from mitigations.rules import Rule

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
    user=None,
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
    from traffic.parsers.eveflow import read_eve_flows, summarize_flows
    from traffic.parsers.httplog import LogError
    from traffic.parsers.pcap import PcapError

    sample = TrafficSample.objects.get(pk=sample_id)
    source = Path(sample.original.path)
    target = columnar_dir() / f"sample-{sample.pk}.parquet"
    try:
        if sample.kind == TrafficSample.Kind.PCAP:
            from traffic.parts import sample_split

            if sample_split(sample):  # separate tasks analyse its parts; the last one merges them
                return sample
            summary, errors, records = _parse_pcap(sample.pk, source, target, customer_networks(sample.customer))
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
    return sample_ready(sample, summary=summary, errors=errors, records=records, target=target)


def sample_ready(sample: TrafficSample, *, summary: dict, errors: list, records: int, target: Path) -> TrafficSample:
    """Store a parsed sample's summary and records file (one pass or merged parts)."""
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


def _parse_pcap(
    sample_id: int, source: Path, target: Path, networks: list | None = None
) -> tuple[dict, list[str], int]:
    from traffic.parsers.analysis import CaptureAnalyser
    from traffic.parsers.pcap import iter_batches
    from traffic.parsers.summary import summarize_pcap

    summary = summarize_pcap(
        source, progress=lambda done, total: _set_progress(sample_id, int(50 * done / max(total, 1)))
    )
    # The victim follows from the summary; the analysis rides on the pass that writes the
    # columns, in a second thread (numpy and the Parquet writer release the GIL: two cores).
    analyser = CaptureAnalyser(summary, networks or [])
    feed = _Feeder(analyser.add_packets)
    reader = iter_batches(
        source, progress=lambda done, total: _set_progress(sample_id, 50 + int(50 * done / max(total, 1)))
    )
    writer = None
    records = 0
    try:
        for batch in reader:
            feed.put(batch)
            table = batch.to_table()
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema, compression="zstd")
            writer.write_table(table)
            records += table.num_rows
    finally:
        if writer is not None:
            writer.close()
        feed.close()
    if writer is None:
        from traffic.parsers.pcap import empty_table

        pq.write_table(empty_table(), target)
    _add_analysis(summary, analyser.result())
    return summary, list(summary.get("errors") or reader.errors), records


class _Feeder:
    """Hands items to ``consume`` in a worker thread; ``close()`` waits and re-raises its error."""

    def __init__(self, consume) -> None:
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None

        def run() -> None:
            while (item := self._queue.get()) is not None:
                if self._error is None:
                    try:
                        consume(item)
                    except BaseException as exc:  # re-raised in close()
                        self._error = exc

        self._thread = threading.Thread(target=run, daemon=True, name="capture-analysis")
        self._thread.start()

    def put(self, item) -> None:
        self._queue.put(item)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error


def customer_networks(customer) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The customer's prefixes (and the addresses of its Spectrum apps): what a victim can be."""
    from console.models import Asset

    nets = []
    for asset in Asset.objects.filter(customer=customer, kind__in=[Asset.Kind.PREFIX, Asset.Kind.SPECTRUM]):
        value = asset.value if asset.kind == Asset.Kind.PREFIX else asset.value.rpartition(":")[0].strip("[]")
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue  # a Spectrum app named by hostname
    return nets


def capture_analyse(summary: dict, source: Path, networks: list) -> None:
    """Victim, direction, vectors and source countries of a capture whose summary is known."""
    from traffic.parsers.analysis import CaptureAnalyser
    from traffic.parsers.pcap import iter_batches

    analyser = CaptureAnalyser(summary, networks)
    for batch in iter_batches(source):
        analyser.add_packets(batch)
    _add_analysis(summary, analyser.result())


def _add_analysis(summary: dict, analysis: dict) -> None:
    """Victim, direction and per-second vectors into the summary, sources with country and ASN.

    The whole-capture vectors of ``summarize_pcap`` stay under ``vectors_whole_capture``
    (what ``analyze_pcap`` prints); ``vectors`` become the victim-side, peak-rate ones.
    """
    heavy = geo.annotate(analysis.pop("heavy_sources"))
    geo.annotate(analysis["top_sources"])
    geo.annotate(summary.get("top_sources", []))
    toward = analysis["directions"]["toward"]["packets"]
    counted = sum(r["sent_packets"] for r in heavy)
    analysis["source_geo"] = {
        "countries": _breakdown(heavy, lambda r: r.get("country")),
        "asns": _breakdown(heavy, lambda r: (f"AS{r['asn']} " if r.get("asn") else "") + (r.get("as_name") or "")),
        "sources": len(heavy),
        "share_of_packets": round(counted / toward, 4) if toward else None,
        # Only the heaviest sources are looked up: a spoofed flood's long tail is not.
        "estimated": counted < toward,
    }
    summary["vectors_whole_capture"] = summary.get("vectors", [])
    summary["vectors"] = analysis.pop("vectors")
    summary["victim"] = analysis.pop("victim")
    summary["direction"] = analysis


def _breakdown(rows: list[dict], key, top: int = 10) -> list[dict]:
    totals: Counter[str] = Counter()
    for row in rows:
        totals[key(row) or "unknown"] += row["sent_packets"]
    return [{"value": k, "packets": n} for k, n in totals.most_common(top)]


def _parse_log(sample: TrafficSample, source: Path, target: Path) -> tuple[dict, list[str], int]:
    from traffic.parsers.httplog import read_log, summarize_log

    result = read_log(source, fmt=sample.kind, limits=upload_limits())
    _set_progress(sample.pk, 70)
    pq.write_table(result.table, target, compression="zstd")
    summary = summarize_log(result.table)
    return _jsonable(summary), list(result.errors), result.table.num_rows


def _jsonable(value: Any) -> Any:
    """Summaries go into a JSON column: numpy scalars and datetimes become plain values."""
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


def sample_table(sample: TrafficSample, columns: Collection[str] | None = None) -> pa.Table:
    """The parsed records of a ready sample (never re-parses the original).

    ``columns``: only those of them the sample's file has (a file written before a column
    was added lacks it, and a reader of every column would not have seen it either)."""
    if sample.status != TrafficSample.Status.READY or not sample.columnar_path:
        raise ValueError(f"sample {sample.pk} is not parsed yet ({sample.get_status_display()})")
    if columns is not None:
        present = set(pq.read_schema(sample.columnar_path).names)
        from traffic.parsers import compare

        return compare.read_parquet_columns(sample.columnar_path, [name for name in columns if name in present])
    return pq.read_table(sample.columnar_path)


def _compared_columns(sample: TrafficSample) -> tuple[str, ...] | None:
    """The columns a comparison of ``sample`` reads: for request logs the ones ``compare``
    looks at (not the header values, by far the largest column: reading every column of
    1 M + 1 M requests took about 5 CPU s, these about 2); for captures all of them (the
    victim scope and the L7 comparison read many)."""
    if sample.is_packets:
        return None
    from traffic.parsers.compare import REQUEST_COLUMNS

    return REQUEST_COLUMNS


ROLLING_BASELINE_SAMPLES = 3


def _victim_masks(sample: TrafficSample, table: pa.Table) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(toward the victim, from it, the scope clause) over a capture's rows, None without a victim."""
    from mitigations.rules import evaluate, parse

    victim = (sample.summary or {}).get("victim") or {}
    expr = victim.get("expression") or ""
    if sample.kind != TrafficSample.Kind.PCAP or not expr:
        return None
    toward = np.asarray(evaluate(parse(expr), table), bool)
    back = np.asarray(evaluate(parse("ip.src" + expr[len("ip.dst") :]), table), bool) & ~toward
    return toward, back, expr


def sample_baseline(
    *, attack: TrafficSample, baseline: TrafficSample | None = None, columns: Collection[str] | None = None
) -> tuple[pa.Table, dict]:
    """The baseline an attack sample is compared with, and what it is.

    An explicit ``baseline`` sample if given; else the customer's rolling baseline (its
    newest ready samples labelled baseline, of the same record type); else, for a
    capture, the same capture before the attack started (its first vector's first
    second); else no rows at all, so every collateral reads "unknown".
    """
    if baseline is not None:
        if attack.customer_id != baseline.customer_id:
            raise ValueError("compare samples of the same customer")
        if attack.is_packets != baseline.is_packets:
            raise ValueError("compare packets with packets and requests with requests")
        return sample_table(baseline, columns), {"kind": "sample", "label": baseline.name, "samples": [baseline.pk]}
    kinds = (
        [TrafficSample.Kind.PCAP]
        if attack.kind == TrafficSample.Kind.PCAP
        else [attack.kind]
        if attack.is_packets
        else [TrafficSample.Kind.LOGPUSH, TrafficSample.Kind.COMBINED]
    )
    rolling = list(
        TrafficSample.objects.filter(
            customer_id=attack.customer_id,
            label=TrafficSample.Label.BASELINE,
            status=TrafficSample.Status.READY,
            kind__in=kinds,
        )
        .exclude(pk=attack.pk)
        .order_by("-created_at", "-id")[:ROLLING_BASELINE_SAMPLES]
    )
    if rolling:
        tables = [sample_table(b, columns) for b in rolling]
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
        names = ", ".join(b.name for b in rolling)
        return table, {"kind": "rolling", "label": f"rolling baseline: {names}", "samples": [b.pk for b in rolling]}
    table = sample_table(attack, columns)
    start = ((attack.summary or {}).get("direction") or {}).get("attack_start")
    if attack.is_packets and start is not None and "ts" in table.column_names:
        before = table.filter(pc.less(table.column("ts"), float(start)))
        if before.num_rows:
            when = dt.datetime.fromtimestamp(start, tz=dt.UTC).strftime("%H:%M:%S")
            return before, {"kind": "pre_attack", "label": f"this capture before the attack (until {when} UTC)"}
    return table.slice(0, 0), {
        "kind": "none",
        "label": "no baseline: no baseline sample and no quiet time before the attack",
    }


def samples_compare(*, attack: TrafficSample, baseline: TrafficSample | None = None) -> dict:
    """Attack against baseline (see :func:`sample_baseline` when none is given): values side
    by side, ranked attributes, candidate rules. For a capture with a known victim only
    the traffic toward the victim is compared (in the baseline too) and every signature
    carries the victim scope; the victim's own packets count as collateral in the search."""
    from traffic.parsers.compare import compare

    columns = _compared_columns(attack)
    base_table, base_info = sample_baseline(attack=attack, baseline=baseline, columns=columns)
    table = sample_table(attack, columns)
    parts = _victim_masks(attack, table)
    if parts is None:
        result = compare(table, base_table)
    else:
        toward, back, scope = parts
        base_parts = _victim_masks(attack, base_table)
        if base_parts is not None:
            base_table = base_table.filter(pa.array(base_parts[0]))
        result = compare(table.filter(pa.array(toward)), base_table, scope=scope, reverse=table.filter(pa.array(back)))
        table = table.filter(pa.array(toward))
    if attack.kind == TrafficSample.Kind.PCAP:
        result["l7"] = _compare_l7(table, base_table, parts[2] if parts else "")
    result["baseline"] = base_info
    return _jsonable(result)


def _compare_l7(attack: pa.Table, baseline: pa.Table, scope: str) -> dict:
    """The HTTP requests and ClientHellos of a capture against the baseline's, on their L7
    values (user agent, path, JA3, JA4): what the packet comparison cannot see."""
    from traffic.parsers.compare import compare
    from traffic.parsers.l7 import capture_rows

    fields = ("http.request.method", "tls.handshake.ja3_full")
    picked = []
    for t in (attack, baseline):
        masks = [capture_rows(t, (f,))[0] for f in fields]
        picked.append(t.filter(pa.array(masks[0] | masks[1])) if t.num_rows else t)
    if picked[0].num_rows == 0:
        return {"unknown": "this capture has no HTTP requests and no TLS ClientHellos", "signatures": []}
    return compare(picked[0], picked[1], scope=scope, l7=True)


def rule_simulate(*, expression: str, attack: pa.Table | None, baseline: pa.Table | None, examples: int = 10) -> dict:
    """A rule evaluated over attack and baseline records: what it catches and what it costs."""
    from mitigations.rules import evaluate, parse
    from traffic.parsers.l7 import capture_counted, capture_rows

    rule = parse(expression)
    result: dict[str, Any] = {"expression": rule.to_text(), "layer": rule.layer}
    for name, table in (("attack", attack), ("baseline", baseline)):
        if table is None:
            continue
        missing = sorted(f for f in rule.fields if f not in table.column_names)
        if missing:
            # The sample cannot answer these fields (an L7 rule on a capture, say): say so, not "0 matched".
            what = "this capture" if "frame.number" in table.column_names else "this sample"
            result[name] = {
                "records": table.num_rows,
                "matched": None,
                "share": None,
                "top_matched": {},
                "unknown": f"unknown — {what} has no {', '.join(missing)}",
                "missing_fields": missing,
            }
            continue
        counted = ""
        if "frame.number" in table.column_names:
            # An L7 rule on a capture is judged on the packets carrying requests or
            # ClientHellos; with none, it cannot be judged at all.
            rows, why = capture_rows(table, rule.fields)
            if why:
                result[name] = {
                    "records": table.num_rows,
                    "matched": None,
                    "share": None,
                    "top_matched": {},
                    "unknown": f"unknown — {why}",
                }
                continue
            if rows is not None:
                table = table.filter(pa.array(rows))
                counted = capture_counted(rule.fields)
        mask = evaluate(rule, table)
        matched = int(mask.sum())
        result[name] = {
            "records": table.num_rows,
            "matched": matched,
            "share": matched / table.num_rows if table.num_rows else None,
            "top_matched": _top_matched(table.filter(pa.array(mask)), rule.fields),
        }
        if counted:
            result[name]["counted"] = counted
        if name == "baseline":
            unknown = _unknown_collateral(rule, table)
            if unknown:
                # No traffic the rule could hit: its collateral is not measured, it is not 0.
                result[name].update(share=None, matched=None, unknown=unknown)
        if name == "baseline" and matched:
            hit = table.filter(pa.array(mask)).slice(0, examples)
            keep = [c for c in hit.column_names if c in rule.fields or c in EXAMPLE_COLUMNS]
            result[name]["examples"] = _jsonable(hit.select(keep).to_pylist())
    return result


def _unknown_collateral(rule: Rule, table: pa.Table) -> str:
    """Why a baseline cannot say what a rule would cost ("" when it can).

    The approval gate's own test (``mitigations.rules.baseline.missing_traffic``) decides,
    so this page never shows a measured 0 % where the gate counts the collateral unknown;
    the protocol names the engineer reads first come from the transport fields the rule uses.
    """
    from mitigations.rules.baseline import missing_traffic

    if table.num_rows == 0:
        return "unknown — the baseline has no traffic"
    if "ip.proto" in table.column_names:
        proto = pc.fill_null(table.column("ip.proto"), -1).to_numpy()
        for prefix, kind, numbers in (("udp.", "UDP", (17,)), ("tcp.", "TCP", (6,)), ("icmp.", "ICMP", (1, 58))):
            if any(f.startswith(prefix) for f in rule.fields) and not np.isin(proto, numbers).any():
                return f"unknown — the baseline has no {kind}"
    missing = missing_traffic(rule, table)
    return f"unknown — {'; '.join(missing)}" if missing else ""


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


def attack_samples(*, attack) -> list[TrafficSample]:
    """The ready samples of an attack that are not baselines (at most four, newest first)."""
    return list(
        TrafficSample.objects.filter(attack=attack, status=TrafficSample.Status.READY).exclude(
            label=TrafficSample.Label.BASELINE
        )[:4]
    )


def attack_sample_pairs(*, attack) -> list[tuple[TrafficSample, TrafficSample]]:
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

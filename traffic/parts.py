"""A large capture analysed in parts: record ranges summarised by separate Celery tasks.

The two-core split of ``summarize_pcap`` (traffic/parsers/summary.py) forks one child on
the machine that received the file. This generalises it to N parts on any worker host of
the "analysis" queue:

1. ``sample_split`` cuts a classic pcap at N-1 verified record boundaries
   (``PcapReader.record_boundary``: a chain of plausible record headers) into byte ranges
   and queues one ``traffic.tasks.analyse_part`` per range;
2. each part reads only its range, once, into a ``PcapSummarizer`` and a Parquet file of
   its records; the summariser state (pickled, written by us, read only by us) and the
   records go to media storage, which every worker host shares (compose's ``media``
   volume);
3. the part that finishes last queues ``traffic.tasks.merge_parts``, which merges the
   states in file order exactly as the two-core split merges its halves: a part that
   stopped on a corrupt record ends the capture there (one reader would have stopped
   too), a part whose reader did not land exactly on its end boundary (a false resync)
   sends the whole file back to the one-pass path, error packet numbers are made
   file-wide. For captures within the tallies' ``cap`` the result is the single-pass one.

pcapng files (no fixed record layout to resync on) and files below
``TRAFFIC_PARTS_MIN_BYTES`` keep the one-task path.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import transaction
from django.db.models import Avg

from traffic.models import TrafficSample, TrafficSamplePart
from traffic.parsers.pcap import PcapReader, empty_table
from traffic.parsers.summary import CAP, PcapSummarizer, _renumber

logger = logging.getLogger(__name__)
PCAP_HEADER = 24


# --------------------------------------------------------------------------- pure: split and merge


def plan(path: str | os.PathLike[str], parts: int) -> list[tuple[int, int]]:
    """Byte ranges ``[start, stop)`` of up to ``parts`` parts, cut at record boundaries.

    One range (the whole file) when it cannot be cut: pcapng, a tiny file, no boundary found.
    """
    reader = PcapReader(path)
    try:
        size = reader.size
        bounds = [PCAP_HEADER]
        if reader.format == "pcap" and parts > 1:
            for i in range(1, parts):
                boundary = reader.record_boundary(size * i // parts)
                if boundary is not None and bounds[-1] < boundary < size:
                    bounds.append(boundary)
    finally:
        reader.close()
    bounds.append(max(size, PCAP_HEADER))
    return list(zip(bounds, bounds[1:], strict=False))


@dataclass
class PartResult:
    """What one part's reader saw: its summariser state and where it stopped."""

    summarizer: PcapSummarizer
    errors: list[str] = field(default_factory=list)
    packets: int = 0
    end_offset: int = 0
    overran: bool = False


def analyse_range(
    path: str | os.PathLike[str],
    start: int,
    stop: int,
    *,
    last: bool,
    cap: int = CAP,
    records: Path | None = None,
    progress=None,  # progress(done_bytes, total_bytes), as PcapReader calls it
) -> PartResult:
    """Summarise (and, with ``records``, write the records of) one range in a single pass."""
    reader = PcapReader(
        path, start=start if start > PCAP_HEADER else None, stop=None if last else stop, progress=progress
    )
    acc = PcapSummarizer(cap=cap)
    writer = None
    try:
        for batch in reader:
            acc.add(batch)
            if records is not None:
                table = batch.to_table()
                if writer is None:
                    writer = pq.ParquetWriter(records, table.schema, compression="zstd")
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if records is not None and writer is None:
        pq.write_table(empty_table(), records)
    acc.flush()  # buffered keys into the tallies before pickling, as the two-core split does
    return PartResult(acc, list(reader.errors), reader.packets, reader.end_offset, reader.overran)


def merge(results: list[PartResult], ranges: list[tuple[int, int]], *, top: int = 10) -> tuple[dict, int] | None:
    """The summary of the parts in file order and how many parts it used; None when a
    boundary proved false (re-read the file in one pass)."""
    acc: PcapSummarizer | None = None
    errors: list[str] = []
    base = 0
    used = 0
    for i, (result, (_start, stop)) in enumerate(zip(results, ranges, strict=True)):
        if acc is None:
            acc = result.summarizer
        else:
            acc.merge(result.summarizer)
        errors.extend(_renumber(e, base) for e in result.errors)
        base += result.packets
        used = i + 1
        if result.errors:
            break  # a single reader stops at the first corrupt record: later parts are not read
        if i < len(ranges) - 1 and (result.overran or result.end_offset != stop):
            return None
    assert acc is not None
    return acc.result(errors=errors, top=top), used


# --------------------------------------------------------------------------- Django: parts as tasks


def parts_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "traffic" / "parts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sample_split(sample: TrafficSample, *, parts: int | None = None) -> bool:
    """Queue the sample's capture as parts when it is big enough and can be cut; False to
    let the caller parse it in one pass."""
    parts = parts or settings.TRAFFIC_PARTS
    source = Path(sample.original.path)
    if parts < 2 or source.stat().st_size < settings.TRAFFIC_PARTS_MIN_BYTES:
        return False
    ranges = plan(source, parts)
    if len(ranges) < 2:
        return False
    folder = parts_dir()
    with transaction.atomic():
        sample.parts.all().delete()  # a re-parse starts over
        rows = TrafficSamplePart.objects.bulk_create(
            TrafficSamplePart(
                sample=sample,
                index=i,
                start=start,
                stop=stop,
                state_path=str(folder / f"sample-{sample.pk}-part-{i}.pickle"),
                records_path=str(folder / f"sample-{sample.pk}-part-{i}.parquet"),
            )
            for i, (start, stop) in enumerate(ranges)
        )
    from traffic.tasks import analyse_part

    ids = [row.pk for row in rows]
    transaction.on_commit(lambda: [analyse_part.delay(pk) for pk in ids])
    return True


def part_analyse(*, part_id: int) -> None:
    """Analyse one part (idempotent: a part done is not read again; a part whose worker died
    mid-way is read again from its start), then queue the merge if it was the last."""
    claimed = TrafficSamplePart.objects.filter(pk=part_id).exclude(status=TrafficSamplePart.Status.DONE)
    if not claimed.update(status=TrafficSamplePart.Status.RUNNING, progress=0):
        return
    part = TrafficSamplePart.objects.select_related("sample").get(pk=part_id)
    last = not TrafficSamplePart.objects.filter(sample_id=part.sample_id, index__gt=part.index).exists()
    span = max(part.stop - part.start, 1)
    shown = [0]

    def progress(done: int, _total: int) -> None:
        # The reader counts bytes from the file's start; a part's own share is what we show.
        percent = max(0, min(99, 100 * (done + PCAP_HEADER - part.start) // span))
        if percent >= shown[0] + 5:
            shown[0] = percent
            TrafficSamplePart.objects.filter(pk=part_id).update(progress=percent)
            _sample_progress(part.sample_id)

    try:
        result = analyse_range(
            part.sample.original.path,
            part.start,
            part.stop,
            last=last,
            records=Path(part.records_path),
            progress=progress,
        )
        with open(part.state_path, "wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        TrafficSamplePart.objects.filter(pk=part_id).update(status=TrafficSamplePart.Status.FAILED, error=str(exc))
        raise
    TrafficSamplePart.objects.filter(pk=part_id).update(
        status=TrafficSamplePart.Status.DONE, progress=100, packets=result.packets
    )
    _sample_progress(part.sample_id)
    if not TrafficSamplePart.objects.filter(sample_id=part.sample_id).exclude(status="done").exists():
        from traffic.tasks import merge_parts

        sample_id = part.sample_id
        transaction.on_commit(lambda: merge_parts.delay(sample_id))


def _sample_progress(sample_id: int) -> None:
    """The sample's bar: the mean of its parts, below the 99 % that claims the merge."""
    mean = TrafficSamplePart.objects.filter(sample_id=sample_id).aggregate(mean=Avg("progress"))["mean"] or 0
    TrafficSample.objects.filter(pk=sample_id, progress__lt=99).update(progress=min(98, int(mean)))


def parts_merge(*, sample_id: int) -> TrafficSample | None:
    """Merge the parts' states and records into the sample (once; a second call does nothing)."""
    from traffic import services

    parts = list(TrafficSamplePart.objects.filter(sample_id=sample_id).order_by("index"))
    if not parts or any(p.status != TrafficSamplePart.Status.DONE for p in parts):
        return None
    # Claimed by moving progress to 99: two parts finishing together both queue a merge.
    if not TrafficSample.objects.filter(pk=sample_id, status=TrafficSample.Status.PARSING, progress__lt=99).update(
        progress=99
    ):
        return None
    sample = TrafficSample.objects.get(pk=sample_id)
    source = Path(sample.original.path)
    target = services.columnar_dir() / f"sample-{sample.pk}.parquet"
    results = []
    for part in parts:
        with open(part.state_path, "rb") as fh:
            results.append(pickle.load(fh))  # our own file, written by part_analyse
    merged = merge(results, [(p.start, p.stop) for p in parts])
    if merged is None:
        logger.warning("sample %s: a part boundary was no record start; parsing it in one pass", sample_id)
        summary, errors, records = services._parse_pcap(
            sample.pk, source, target, services.customer_networks(sample.customer)
        )
    else:
        summary, used = merged
        records = _concat_records([Path(p.records_path) for p in parts[:used]], target)
        errors = list(summary.get("errors") or [])
        # Victim, direction and per-second vectors need the merged summary (the victim follows
        # from the whole capture's talkers), so they take one more pass here, not per part.
        services.capture_analyse(summary, source, services.customer_networks(sample.customer))
    for part in parts:
        for path in (part.state_path, part.records_path):
            Path(path).unlink(missing_ok=True)
    return services.sample_ready(sample, summary=summary, errors=errors, records=records, target=target)


def _concat_records(paths: list[Path], target: Path) -> int:
    """The parts' record files as one, packet numbers made file-wide (each part counts from 1)."""
    writer = None
    base = 0
    try:
        for path in paths:
            part_rows = 0
            for batch in pq.ParquetFile(path).iter_batches():
                table = pa.Table.from_batches([batch])
                column = table.schema.get_field_index("frame.number")
                table = table.set_column(column, "frame.number", pc.add(table.column(column), base))
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema, compression="zstd")
                writer.write_table(table)
                part_rows += table.num_rows
            base += part_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(empty_table(), target)
    return base

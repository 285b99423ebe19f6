"""File import of JSON lines / EVE files: streamed in chunks, each chunk one delivery.

A 1 GB file never sits in memory: it is read line by line and cut into deliveries of
IMPORT_CHUNK_LINES lines, which go through the same inbox and parsers as pushed ones.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from alerts.models import AlertImport, Delivery, Feed
from alerts.services import delivery_process, delivery_receive

IMPORT_CHUNK_LINES = 2000


def iter_chunks(path: Path, lines_per_chunk: int = IMPORT_CHUNK_LINES) -> Iterator[tuple[bytes, int]]:
    """(chunk bytes, bytes of the file read so far, for progress); gzip files are read as they are."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if compressed else raw
        buffer: list[bytes] = []
        for line in stream:
            if line.strip():
                buffer.append(line)
            if len(buffer) >= lines_per_chunk:
                yield b"".join(buffer), raw.tell()
                buffer = []
        if buffer:
            yield b"".join(buffer), raw.tell()


def import_file(
    *, feed: Feed, path: Path, progress: Callable[[int, int, int], None] | None = None, process_now: bool = True
) -> tuple[int, int]:
    """Import a file into a feed; returns (deliveries, alerts created or updated)."""
    stat = path.stat()
    size = stat.st_size
    deliveries = alerts = 0
    for index, (chunk, done) in enumerate(iter_chunks(path)):
        # Equal chunks of one file are not retries; importing the same file again is.
        key = f"import:{path.resolve()}:{size}:{stat.st_mtime_ns}:{index}:".encode()
        received = delivery_receive(
            feed=feed,
            body=chunk,
            headers={"x-import": path.name, "x-chunk": str(index)},
            source="import",
            dedup_key=key,
        )
        deliveries += 1
        if process_now and received.created:
            delivery = delivery_process(delivery_id=received.delivery.pk)
            if delivery is not None and delivery.status == Delivery.Status.PROCESSED:
                alerts += delivery.alerts_created + delivery.alerts_updated + delivery.alerts_resolved
        if progress:
            progress(done, size, deliveries)
    return deliveries, alerts


def import_run(*, import_id: int) -> AlertImport | None:
    job = AlertImport.objects.select_related("feed").filter(pk=import_id).first()
    if job is None or job.status == AlertImport.Status.DONE:
        return job
    AlertImport.objects.filter(pk=job.pk).update(status=AlertImport.Status.RUNNING)

    def progress(done: int, size: int, deliveries: int) -> None:
        AlertImport.objects.filter(pk=job.pk).update(bytes_done=done, size=size, deliveries=deliveries)

    try:
        import_file(feed=job.feed, path=Path(job.path), progress=progress)
    except OSError as exc:
        AlertImport.objects.filter(pk=job.pk).update(status=AlertImport.Status.FAILED, error=str(exc))
    else:
        AlertImport.objects.filter(pk=job.pk).update(status=AlertImport.Status.DONE)
    job.refresh_from_db()
    return job


def import_enqueue(*, feed: Feed, uploaded, user) -> AlertImport:
    """Keep an uploaded file on disk (streamed by Django's upload handlers) and import it in Celery."""
    from django.conf import settings

    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{timezone.now():%Y%m%d%H%M%S}-{feed.slug}-{Path(uploaded.name).name[:80]}"
    with target.open("wb") as out:
        for piece in uploaded.chunks():
            out.write(piece)
    job = AlertImport.objects.create(
        feed=feed, path=str(target), filename=uploaded.name[:255], size=target.stat().st_size, created_by=user
    )
    from alerts.tasks import run_import

    transaction.on_commit(lambda: run_import.delay(job.pk))
    return job

"""Import a JSON lines / EVE file into a feed, streaming, with progress."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alerts.imports import import_file
from alerts.models import Feed
from console.context import acting_as


class Command(BaseCommand):
    help = "Import alerts from a file (JSON lines, EVE JSON, optionally gzipped) into a feed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--feed", required=True, help="feed slug")
        parser.add_argument("file")

    def handle(self, *args, feed: str, file: str, **options) -> None:
        target = Feed.objects.filter(slug=feed).first()
        if target is None:
            raise CommandError(f"no feed {feed!r}; feeds: {', '.join(Feed.objects.values_list('slug', flat=True))}")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")

        def progress(done: int, size: int, deliveries: int) -> None:
            percent = 100 * done / size if size else 100
            self.stdout.write(f"\r{percent:5.1f}%  {deliveries} chunks", ending="")
            self.stdout.flush()

        with acting_as("import_alerts"):
            deliveries, alerts = import_file(feed=target, path=path, progress=progress)
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Imported {path.name}: {deliveries} chunks, {alerts} alerts created or updated.")
        )

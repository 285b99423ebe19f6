from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alerts.models import Attack
from console.context import acting_as
from console.models import Customer
from traffic.models import TrafficSample
from traffic.services import sample_create, sample_parse


class Command(BaseCommand):
    help = "Import a capture or request log as a traffic sample of a customer, and parse it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--customer", required=True, help="customer slug")
        parser.add_argument("--label", choices=TrafficSample.Label.values, default="unknown")
        parser.add_argument("--kind", choices=TrafficSample.Kind.values, default="")
        parser.add_argument("--attack", type=int, help="attack id")

    def handle(self, *args, file: str, customer: str, label: str, kind: str, attack: int | None, **options) -> None:
        target = Customer.objects.filter(slug=customer).first()
        if target is None:
            raise CommandError(f"no customer {customer!r}")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")
        with acting_as("import_traffic"), path.open("rb") as fh:
            sample = sample_create(
                customer=target,
                name=path.name,
                fileobj=fh,
                label=label,
                kind=kind,
                attack=Attack.objects.filter(pk=attack).first() if attack else None,
            )
            sample = sample_parse(sample_id=sample.pk)
        self.stdout.write(f"sample {sample.pk}: {sample.get_status_display()}, {sample.record_count} records")
        for problem in sample.errors:
            self.stderr.write(f"problem: {problem}")

"""Demo: a generated report of the bank's biggest past attack. Idempotent."""

from __future__ import annotations

from alerts.models import Attack
from console.models import Customer
from reports import services
from reports.models import Report


def seed(stdout=None) -> dict:
    bank = Customer.objects.filter(slug="first-harbor-bank").first()
    if bank is None:
        return {"reports": 0}
    attack = (
        Attack.objects.filter(customer=bank, ongoing=False)
        .exclude(peak_bps__isnull=True, peak_pps__isnull=True)
        .order_by("-peak_bps", "-peak_pps", "-id")
        .first()
    )
    if attack is None:
        return {"reports": 0}
    existing = Report.objects.filter(customer=bank, parameters__attack=attack.pk, status=Report.Status.DONE).first()
    if existing:
        return {"reports": 0, "report": existing.pk}
    report = services.report_request(user=None, attack=attack, enqueue=False)
    report = services.report_generate(report_id=report.pk)
    if stdout is not None and report is not None:
        stdout.write(f"Demo report {report.pk}: {report.title} ({'with' if report.pdf else 'without'} PDF)\n")
    return {"reports": 1, "report": report.pk if report else None}

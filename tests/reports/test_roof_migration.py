"""Moving the report and rollup models from the console app to the reports app moved no data.

A report written by the console app (migration state before ``console.0008``) is read back,
unchanged, through ``reports.models.Report`` after the migrations run, and the tables keep
their ``console_`` names.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("console", "0007_merge_20261207_1708"), ("reports", None)]


@pytest.mark.django_db(transaction=True)
def test_a_report_written_before_the_move_is_read_after_it() -> None:
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        # The console app's models as its migrations left them at 0007 (historical models).
        old = executor.loader.project_state([BEFORE[0]]).apps.all_models["console"]
        customer = old["customer"].objects.create(name="Acme", slug="acme-move")
        report = old["report"].objects.create(
            customer=customer, kind="period", title="written before the move", html="<p>kept</p>"
        )
        old["rollupwatermark"].objects.create(name="alerts-move")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)

    from reports.models import AlertRollup, Report, RollupWatermark

    moved = Report.objects.get(pk=report.pk)
    assert (moved.title, moved.html, moved.customer.slug) == ("written before the move", "<p>kept</p>", "acme-move")
    assert RollupWatermark.objects.filter(name="alerts-move").exists()
    assert (Report._meta.db_table, AlertRollup._meta.db_table) == ("console_report", "console_alertrollup")

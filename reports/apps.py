from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """The roof: dashboards, rollups, charts and customer attack reports; reads every app, imported by none."""

    name = "reports"
    verbose_name = "Dashboards and reports"

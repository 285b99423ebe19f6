"""Queue names, task routes and the broker URL: what the settings, the health page and the
commands need to know of Celery without importing it.

Importing Celery, kombu and their dependencies costs about 0.15 s of CPU, which every process
paid at start-up (``console.settings`` read the broker URL from ``console.celery``). Only a
process that sends or runs a task needs the Celery app; it imports ``console.celery``, which
takes its queues and routes from here.
"""

import os

CRITICAL, DEFAULT, ANALYSIS, REPORTS = "critical", "default", "analysis", "reports"
QUEUES = (CRITICAL, DEFAULT, ANALYSIS, REPORTS)

ROUTES: dict[str, str] = {
    # Ingest: what stands between a sender's 202 and the alert on the console.
    "alerts.tasks.process_delivery": CRITICAL,
    "alerts.tasks.summarize_attack": CRITICAL,
    "alerts.tasks.sweep_pending_deliveries": CRITICAL,
    # Notifications and enforcement: someone is waiting for them.
    "tickets.tasks.send_notification_email": CRITICAL,
    "tickets.tasks.post_webhook": CRITICAL,
    "mitigations.tasks.apply_mitigation": CRITICAL,
    # Parsing files: minutes of CPU each.
    "alerts.tasks.run_import": ANALYSIS,
    "traffic.tasks.parse_sample": ANALYSIS,
    "traffic.tasks.analyse_part": ANALYSIS,
    "traffic.tasks.merge_parts": ANALYSIS,
    # Dashboards and reports.
    "console.tasks.refresh_rollups": REPORTS,
    "console.tasks.generate_report": REPORTS,
    "console.tasks.schedule_reports": REPORTS,
}


def broker_url_from_env(environ: os._Environ | dict[str, str] = os.environ) -> str:
    """BROKER_URL (or CELERY_BROKER_URL) when set, else REDIS_URL, else "" (the filesystem broker).

    Read here rather than from Django's settings because the queues' type must be known when
    this module is imported, which happens before the settings are."""
    return environ.get("CELERY_BROKER_URL") or environ.get("BROKER_URL") or environ.get("REDIS_URL") or ""


def broker_is_amqp(url: str) -> bool:
    return url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")

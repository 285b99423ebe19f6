"""Queues by urgency: every route names a real task, every task lands on a queue, and every
queue has a worker, in compose and in ``runconsole``. A route with a typo in the task name
silently sends that task to "default", behind housekeeping; a queue no worker consumes
holds its tasks forever."""

from __future__ import annotations

import fnmatch

import pytest
import yaml

from console.celery import ANALYSIS, CRITICAL, QUEUES, REPORTS, ROUTES, app
from tests.shared import REPO

app.loader.import_default_modules()
OURS = ("alerts.", "tickets.", "mitigations.", "traffic.", "console.", "reports.")
TASKS = sorted(n for n in app.tasks if n.startswith(OURS))


def _queue_of(name: str) -> str:
    route = app.amqp.router.route({}, name)
    return route["queue"].name


@pytest.mark.parametrize("pattern", sorted(app.conf.task_routes))
def test_every_route_matches_a_registered_task(pattern: str) -> None:
    assert fnmatch.filter(TASKS, pattern), f"route {pattern!r} matches no registered task"


@pytest.mark.parametrize("name", TASKS)
def test_every_task_is_sent_to_one_of_the_queues(name: str) -> None:
    assert _queue_of(name) in QUEUES


def test_ingest_and_notifications_are_critical_and_long_work_is_not() -> None:
    critical = ("alerts.tasks.process_delivery", "tickets.tasks.post_webhook", "tickets.tasks.send_notification_email")
    for name in critical:
        assert _queue_of(name) == CRITICAL
    assert _queue_of("traffic.tasks.parse_sample") == ANALYSIS
    assert _queue_of("alerts.tasks.run_import") == ANALYSIS
    assert _queue_of("console.tasks.generate_report") == REPORTS
    assert set(ROUTES.values()) <= set(QUEUES)


def _consumed(command: list[str]) -> set[str]:
    return set(command[command.index("-Q") + 1].split(",")) if "-Q" in command else set()


def test_compose_runs_a_worker_for_every_queue() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    workers = {name: _consumed(s["command"]) for name, s in services.items() if "worker" in s.get("command", [])}
    assert set().union(*workers.values()) == set(QUEUES), workers
    # The critical queue has a worker of its own: nothing else waits in front of an alert.
    assert any(queues == {CRITICAL} for queues in workers.values()), workers


def test_runconsole_worker_consumes_every_queue(monkeypatch, settings, tmp_path) -> None:
    import signal
    import subprocess

    from django.core.management import call_command

    started: list[list[str]] = []

    class Stopped(Exception):
        pass

    class Child:
        def __init__(self, argv, **kwargs) -> None:
            started.append(argv)
            self.pid, self.returncode = 0, 0

        def poll(self) -> int:
            raise Stopped  # end the supervision loop at its first look

        def send_signal(self, sig) -> None:
            pass

        def wait(self, timeout=None) -> int:
            return 0

    settings.CELERY_BEAT_SCHEDULE_FILENAME = str(tmp_path / "celerybeat-schedule")  # it clears stale ones
    monkeypatch.setattr(subprocess, "Popen", Child)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own Ctrl-C handler
    with pytest.raises(Stopped):
        call_command("runconsole", "--no-simulate")
    workers = [argv for argv in started if "worker" in argv]
    assert workers and set().union(*(_consumed(argv) for argv in workers)) == set(QUEUES)

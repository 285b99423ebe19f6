"""Beat can send every scheduled task: a task Celery refuses to send never runs in production.

Eager mode in the other tests skips the checks ``apply_async`` makes before publishing, so a
task whose hard time limit is below the app's default soft limit passed every test while
beat logged "Couldn't apply scheduled task" every 30 seconds.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from console.celery import app

# Registers every app's tasks now, as a worker does at start (autodiscovery is lazy).
app.loader.import_default_modules()
OURS = ("alerts.", "tickets.", "mitigations.", "traffic.", "console.")


def _limits(task) -> tuple[float, float]:
    soft = task.soft_time_limit if task.soft_time_limit is not None else app.conf.task_soft_time_limit
    hard = task.time_limit if task.time_limit is not None else app.conf.task_time_limit
    return soft, hard


@pytest.mark.parametrize("name", sorted(n for n in app.tasks if n.startswith(OURS)))
def test_every_task_soft_limit_is_within_its_hard_limit(name: str) -> None:
    soft, hard = _limits(app.tasks[name])
    assert soft <= hard, f"{name}: soft_time_limit {soft} > time_limit {hard}; Celery refuses to send it"


@pytest.mark.parametrize("entry", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_names_a_task_that_can_be_sent(entry: str) -> None:
    name = settings.CELERY_BEAT_SCHEDULE[entry]["task"]
    assert name in app.tasks, f"beat entry {entry} names {name}, which no app registers"
    soft, hard = _limits(app.tasks[name])
    assert soft <= hard, f"beat entry {entry}: {name} would be refused (soft {soft} > hard {hard})"

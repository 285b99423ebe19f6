"""The console's project package.

``celery_app`` is the Celery app (``celery -A console``), imported on first use rather than
with the package: importing Celery and kombu cost every process about 0.15 s of CPU at
start-up (``console.settings`` is inside this package), while only a process that sends or
runs a task needs them. Every tasks module imports ``console.celery`` itself, so the app is
the current one before a task is sent.
"""

from typing import Any

__all__ = ("celery_app",)


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from console.celery import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

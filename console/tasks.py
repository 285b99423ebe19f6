from __future__ import annotations

from celery import shared_task
from django.utils import timezone

import console.celery  # noqa: F401 - our app is the current one before a task is sent (console/__init__.py)
from console.models import Heartbeat


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Beat proves it runs: /healthz shows the age of the last heartbeat."""
    Heartbeat.objects.update_or_create(name="beat", defaults={"at": timezone.now()})

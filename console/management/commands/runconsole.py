"""Start the whole console in one terminal: web, Celery worker, Celery beat and the demo feed.

Ctrl-C stops all of it. This is what ``make run`` calls.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from console.queues import QUEUES


class Command(BaseCommand):
    help = "Run web + Celery worker + beat (+ the simulated alert feed) until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--no-simulate", action="store_true", help="do not start the simulated alert feed")

    def handle(self, *args, host: str, port: int, no_simulate: bool, **options) -> None:
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        celery = [python, "-m", "celery", "-A", "console"]
        processes = {
            "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"]
            if settings.DEBUG
            else [python, "-m", "gunicorn", "console.wsgi", "-b", f"{host}:{port}", "-w", "3", "--access-logfile", "-"],
            # One worker consuming every queue (QUEUES), so nothing routed anywhere waits forever;
            # compose runs one per urgency instead.
            "worker": [*celery, "worker", "-Q", ",".join(QUEUES), "-c", "2", "-l", "warning"],
            "beat": [*celery, "beat", "-l", "warning", "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        }
        simulate = not no_simulate and os.environ.get("SIMULATE", "1") not in ("0", "false", "no")
        if simulate:
            processes["feed"] = [python, manage, "simulate_feed", "--url", f"http://{host}:{port}", "--forever"]
        # Beat's schedule file only remembers last run times; a console killed mid-write
        # leaves it unreadable, and beat would refuse to start.
        for stale in Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.glob(
            Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).name + "*"
        ):
            stale.unlink(missing_ok=True)
        children: dict[str, subprocess.Popen] = {}
        for name, cmd in processes.items():
            # Own process group per child so Ctrl-C reaches us first and we stop them in order.
            children[name] = subprocess.Popen(cmd, cwd=settings.BASE_DIR, start_new_session=True)
        self.stdout.write(self.style.SUCCESS(f"Shieldwall console: http://{host}:{port}/"))
        self.stdout.write(f"Processes: {', '.join(f'{n} (pid {p.pid})' for n, p in children.items())}")
        self.stdout.write("Ctrl-C stops all of them.")
        stopping = False

        def stop(*_args) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            restarts: dict[str, list[float]] = {name: [] for name in processes}
            while not stopping:
                for name, child in list(children.items()):
                    if child.poll() is None:
                        continue
                    # Like a supervisor: background processes come back (nothing is lost, the
                    # inbox keeps pending deliveries); the web process or a crash loop ends it all.
                    recent = [t for t in restarts[name] if time.monotonic() - t < 60]
                    if name == "web" or len(recent) >= 3:
                        self.stderr.write(f"{name} exited with {child.returncode}; stopping the console")
                        stopping = True
                        break
                    self.stderr.write(f"{name} exited with {child.returncode}; restarting it")
                    restarts[name] = [*recent, time.monotonic()]
                    children[name] = subprocess.Popen(processes[name], cwd=settings.BASE_DIR, start_new_session=True)
                time.sleep(0.5)
        finally:
            for child in children.values():
                if child.poll() is None:
                    # The leader first: Celery stops its own pool cleanly on SIGTERM.
                    child.send_signal(signal.SIGTERM)
            deadline = time.time() + 10
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
            self.stdout.write("Stopped.")

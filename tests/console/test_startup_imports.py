"""Start-up stays light: no process of the console imports numpy, pyarrow and the like until it needs them.

Every management command, gunicorn worker and Celery worker pays for what Django's start-up
imports; these libraries cost seconds together (issue 20: `analyze_pcap` on a 130-byte
capture took 3.1 s before it started). Each check runs in a fresh interpreter, since this
test process has long imported them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.shared import REPO

HEAVY = (
    "numpy",
    "pyarrow",
    "duckdb",
    "polars",
    "plotly",
    "playwright",
    "weasyprint",
    "maxminddb",
    "geoip2fast",
    # The parsers and the rule evaluator are built on numpy and pyarrow.
    "traffic.parsers.pcap",
    "traffic.parsers.summary",
    "traffic.parsers.analysis",
    "traffic.parsers.compare",
    "traffic.parsers.httplog",
    "traffic.parsers.eveflow",
    "mitigations.rules.evaluator",
)
# The modules a request, a command or a worker loads through the URLconf, the admin and Celery.
APP_MODULES = ("models", "admin", "urls", "views", "api", "api.urls", "api.views", "api.serializers", "tasks", "forms")

SCRIPT = """
import importlib, json, sys
heavy = {heavy!r}
loaded = lambda: sorted(name for name in heavy if name in sys.modules)
seen = {{}}

import django
django.setup()
seen["django.setup()"] = loaded()

import console.wsgi  # what a gunicorn worker imports
from django.urls import resolve
resolve("/")  # loads the whole URLconf: every app's urls, views and API
from django.contrib import admin
admin.autodiscover()
from django.apps import apps
for config in apps.get_app_configs():
    if config.name in {apps_of_ours!r}:
        for sub in {app_modules!r}:
            try:
                importlib.import_module(config.name + "." + sub)
            except ModuleNotFoundError as exc:
                if not exc.name.startswith(config.name):
                    raise
seen["URLconf, admin and every app's modules"] = loaded()

from console.celery import app
app.loader.import_default_modules()  # what a Celery worker imports: every tasks module
seen["Celery's task modules"] = loaded()

from django.core.management import call_command
call_command("check", verbosity=0)  # what every management command runs before its own work
seen["manage.py check"] = loaded()
print(json.dumps(seen))
"""


def _run(script: str, tmp_path) -> dict[str, list[str]]:
    env = {
        **os.environ,
        # The production path, as gunicorn and the image's commands run.
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DEBUG": "0",
        "SHIELDWALL_TESTING": "0",
        "SECRET_KEY": "startup-imports-test-" + "x" * 40,
        "SHIELDWALL_VAR_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_process_of_the_console_imports_the_heavy_libraries_at_start_up(tmp_path) -> None:
    script = SCRIPT.format(
        heavy=HEAVY,
        apps_of_ours=("console", "alerts", "tickets", "traffic", "mitigations"),
        app_modules=APP_MODULES,
    )
    seen = _run(script, tmp_path)
    assert seen == {stage: [] for stage in seen}
    assert len(seen) == 4


@pytest.mark.parametrize(
    ("use", "needs"),
    [
        ("from traffic import services; services.np.zeros(1)", "numpy"),
        ("from mitigations.rules import evaluate; evaluate('ip.src == 192.0.2.1', {'ip.src': ['192.0.2.1']})", "numpy"),
    ],
)
def test_the_heavy_libraries_come_in_when_first_used(tmp_path, use: str, needs: str) -> None:
    """The other half: the lazy names still work, and do import the library (so the test above can fail)."""
    script = (
        "import json, sys, django\ndjango.setup()\n"
        f"before = {needs!r} in sys.modules\n{use}\n"
        f"print(json.dumps({{'before': [before], 'after': [{needs!r} in sys.modules]}}))"
    )
    assert _run(script, tmp_path) == {"before": [False], "after": [True]}


# What a process that sends and runs no task, and compiles no rule, need not import: Celery and
# kombu (about 0.15 s of CPU) and the rule compilers. Parsing a rule (forms, API) stays eager.
NOT_AT_START_UP = (
    "celery.app",
    "celery.signals",
    "kombu",
    "mitigations.compiling",
    "mitigations.rules.cloudflare",
    "mitigations.rules.cloudflare_plans",
    "mitigations.rules.iptables",
    "mitigations.rules.nftables",
    "mitigations.rules.normalize",
)

COMMAND_SCRIPT = """
import json, sys
names = {names!r}
import django
django.setup()
import console.wsgi
from django.urls import resolve
resolve("/")
from django.contrib import admin
admin.autodiscover()
from django.core.management import call_command
call_command("check", verbosity=0)
print(json.dumps({{"loaded": sorted(name for name in names if name in sys.modules)}}))
"""


def test_a_command_or_a_web_worker_starts_without_celery_and_the_rule_compilers(tmp_path) -> None:
    assert _run(COMMAND_SCRIPT.format(names=NOT_AT_START_UP), tmp_path) == {"loaded": []}


def test_a_task_sent_after_a_lazy_start_goes_through_the_console_app(tmp_path) -> None:
    """Celery is imported on the first task, and that task is still ours: our queues and routes,
    not Celery's default app (which would send to amqp://localhost and the 'celery' queue)."""
    script = (
        "import json, sys, django\ndjango.setup()\n"
        "before = 'celery.app' in sys.modules\n"
        "from alerts.tasks import process_delivery\n"
        "from celery.app.utils import find_app\n"
        "import console\n"
        "app = process_delivery.app\n"
        "route = app.amqp.router.route({}, process_delivery.name)\n"
        "print(json.dumps({'before': before, 'app': app.main, 'same': app is console.celery_app is find_app('console'),"
        " 'queue': route['queue'].name, 'default': app.conf.task_default_queue}))"
    )
    assert _run(script, tmp_path) == {
        "before": False,
        "app": "shieldwall",
        "same": True,
        "queue": "critical",
        "default": "default",
    }


def test_the_rule_compilers_come_in_when_first_named(tmp_path) -> None:
    script = (
        "import json, sys, django\ndjango.setup()\n"
        "before = 'mitigations.rules.nftables' in sys.modules\n"
        "from mitigations.rules import compile_nftables, compile\n"
        "from mitigations.rules import nftables\n"
        "out = compile('ip.src == 192.0.2.1', 'nftables')\n"
        "print(json.dumps({'before': before, 'same': compile_nftables is nftables.compile_nftables,"
        " 'drops': '192.0.2.1' in out}))"
    )
    assert _run(script, tmp_path) == {"before": False, "same": True, "drops": True}

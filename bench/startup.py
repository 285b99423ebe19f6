"""Start-up benchmark: what the engineer waits for before a command or a page starts its work.

    .venv/bin/python bench/startup.py [--repeat 5] [--project DIR] [--pcap FILE]

Each row runs in its own process, ``--repeat`` times; the table shows the best and the median
wall time, and for the commands the median CPU seconds (user + system), which a loaded machine
inflates much less than the wall time. The peers run in the same loop, one after the other, so the machine's load hits
them alike:

- ``bare Django``: a generated project with the same INSTALLED_APPS third-party apps and
  middleware as Shieldwall (admin, DRF, django-filter, drf-spectacular and its sidecar,
  django-otp, django-htmx, csp, whitenoise), the admin and a schema view in its URLconf and
  nothing of ours. ``manage.py check`` minus this row is what our own code costs at start-up
  (target, issue 20: at most 0.5 s).
- ``manage.py analyze_pcap`` on a 130-byte capture beside ``tshark -r`` on the same file.
- gunicorn (one sync worker, ``DEBUG=0``): seconds from spawning the master until the first
  answer to ``GET /api/`` (ours: DRF's 401; the bare project: a 404). The worker imports the
  app and loads the URLconf on that first request, so this is "ready to serve".
- ``GET /api/schema/`` on that gunicorn: the first request builds the OpenAPI schema, later
  ones are served from the process's memory (``console.schema.CachedSchemaView``). The schema
  is for logged-in users only, so each checkout gets its own SQLite database (migrated once,
  before the timed loop) with a user and an API key, which the request sends as
  ``Authorization: Token <key>``.

The project's sources are byte-compiled first (``compileall``), as the image does at build
time: with ``PYTHONDONTWRITEBYTECODE=1`` (this machine's environment and the image's) Python
would otherwise compile every module of ours again in every process, about 0.6 s of CPU.
``--project`` measures another checkout with this script; ``--compare DIR`` adds a second one
to the same loop, e.g. ``git archive main | tar -x -C /tmp/main`` for a before/after in one run.
The load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import compileall
import http.client
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
TINY_PCAP = REPO.parent / "shared" / "data" / "pcap" / "ddos" / "esnet_ntp-monlist.pcap"
PROJECT_DIRS = ("console", "alerts", "tickets", "traffic", "mitigations")

BARE_SETTINGS = '''
"""Bare Django with Shieldwall's third-party apps: the start-up every Django project pays."""
from pathlib import Path
SECRET_KEY = "bare-bench-" + "x" * 50
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles", "django.contrib.humanize", "rest_framework", "django_otp",
    "django_otp.plugins.otp_totp", "django_filters", "drf_spectacular", "drf_spectacular_sidecar",
    "django_htmx", "csp",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware", "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware", "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware", "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware", "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
ROOT_URLCONF = "bare_urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                          "django.contrib.auth.context_processors.auth",
                          "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(__file__).parent / "db.sqlite3")}}
STATIC_URL = "static/"
USE_TZ = True
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
'''
BARE_URLS = """
from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
urlpatterns = [path("admin/", admin.site.urls), path("api/schema/", SpectacularAPIView.as_view())]
"""
BARE_WSGI = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bare_settings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}")
    return elapsed, _children_cpu() - cpu


def api_key(*, cwd: Path, env: dict[str, str]) -> str:
    """Migrate the checkout's own database and return a new API key of a new user there.

    Through the console's own commands (``createsuperuser``, ``drf_create_token``), so the key
    is made as an engineer would make it; this runs once per checkout, outside the timings."""
    migrate = subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=cwd, env=env, capture_output=True, text=True
    )
    if migrate.returncode != 0:  # its system-check warnings (SQLite's W040) are noise otherwise
        raise SystemExit(f"migrate failed in {cwd}:\n{migrate.stderr}")
    password_env = {**env, "DJANGO_SUPERUSER_PASSWORD": "startup-bench-" + "x" * 20}
    create = [PY, "manage.py", "createsuperuser", "--noinput", "--username", "bench", "--email", "bench@example.com"]
    subprocess.run(create, cwd=cwd, env=password_env, check=True, stdout=subprocess.DEVNULL)
    done = subprocess.run(
        [PY, "manage.py", "drf_create_token", "bench", "--name", "bench/startup.py"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    words = done.stdout.split()
    if len(words) < 3 or words[0] != "Generated":
        raise SystemExit(f"drf_create_token printed no key: {done.stdout!r} {done.stderr!r}")
    return words[2]


def _get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": "127.0.0.1", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def gunicorn_run(
    *, cwd: Path, env: dict[str, str], app: str, ready_path: str, schema_path: str, token: str | None
) -> dict[str, float]:
    """Seconds to the first answer, then to the first and a later schema request."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [str(BIN / "gunicorn"), app, "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "120"]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        # Its own session, so that stopping it stops its worker too, and nothing else.
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"gunicorn exited: {log.read().decode(errors='replace')}")
                try:
                    status, _ = _get(port, ready_path)
                    break
                except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                    time.sleep(0.01)
            figures = {"ready": time.perf_counter() - start}
            if status >= 500:
                raise SystemExit(f"{ready_path} answered {status}")
            for label in ("schema_first", "schema_next"):
                t0 = time.perf_counter()
                status, body = _get(port, schema_path, token)
                figures[label] = time.perf_counter() - t0
                if status != 200 or b"openapi" not in body:
                    raise SystemExit(f"{schema_path} answered {status}: {body[:200]!r}")
            return figures
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--project", type=Path, default=REPO, help="checkout to measure (default: this one)")
    parser.add_argument("--compare", type=Path, help="another checkout measured in the same loop (e.g. main)")
    parser.add_argument("--pcap", type=Path, default=TINY_PCAP)
    args = parser.parse_args()
    project = args.project.resolve()
    checkouts = [("shieldwall", project)]
    if args.compare:
        checkouts.append((f"shieldwall at {args.compare}", args.compare.resolve()))

    for _, checkout in checkouts:
        for name in PROJECT_DIRS:
            compileall.compile_dir(checkout / name, quiet=1)
    print(f"load average at start: {loadavg()}   project: {project}   pcap: {args.pcap} ({args.pcap.stat().st_size} B)")

    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        tmp_dir = Path(tmp)
        bare = tmp_dir / "bare"
        bare.mkdir()
        (bare / "bare_settings.py").write_text(BARE_SETTINGS)
        (bare / "bare_urls.py").write_text(BARE_URLS)
        (bare / "bare_wsgi.py").write_text(BARE_WSGI)
        compileall.compile_dir(bare, quiet=1)
        # The checkouts get their own SQLite databases (in their var dirs), never DATABASE_URL's.
        skip = ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL")
        base = {k: v for k, v in os.environ.items() if k not in skip}
        envs: dict[Path, dict[str, str]] = {}
        tokens: dict[Path, str] = {}
        for index, (_, checkout) in enumerate(checkouts):
            var = tmp_dir / f"var{index}"
            var.mkdir()
            envs[checkout] = {
                **base,
                "DEBUG": "0",
                "SHIELDWALL_TESTING": "0",
                "SECRET_KEY": "startup-bench-not-a-secret-" + "x" * 40,
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "0",
                "SHIELDWALL_VAR_DIR": str(var),
                "DJANGO_SETTINGS_MODULE": "console.settings",
            }
            tokens[checkout] = api_key(cwd=checkout, env=envs[checkout])
        bare_env = {**base, "PYTHONPATH": str(bare), "DJANGO_SETTINGS_MODULE": "bare_settings"}

        commands: list[tuple[str, list[str], Path, dict[str, str]]] = [
            ("python -c 'import django'", [PY, "-c", "import django"], bare, bare_env),
            ("bare Django: django-admin check", [PY, "-m", "django", "check"], bare, bare_env),
        ]
        for name, checkout in checkouts:
            commands.append((f"{name}: manage.py check", [PY, "manage.py", "check"], checkout, envs[checkout]))
            analyze = [PY, "manage.py", "analyze_pcap", str(args.pcap)]
            commands.append((f"{name}: manage.py analyze_pcap", analyze, checkout, envs[checkout]))
        tshark = shutil.which("tshark")
        if tshark:
            commands.append(("tshark -r (same capture)", [tshark, "-r", str(args.pcap)], project, base))
        times: dict[str, list[float]] = {label: [] for label, *_ in commands}
        cpu: dict[str, list[float]] = {label: [] for label, *_ in commands}
        servers: list[tuple[str, Path, dict[str, str], str, str | None]] = [
            ("bare Django", bare, bare_env, "bare_wsgi", None)
        ]
        servers += [(name, checkout, envs[checkout], "console.wsgi", tokens[checkout]) for name, checkout in checkouts]
        web: dict[str, dict[str, list[float]]] = {name: {} for name, *_ in servers}
        for _ in range(args.repeat):
            for label, argv, cwd, env in commands:
                wall, used = timed(argv, cwd=cwd, env=env)
                times[label].append(wall)
                cpu[label].append(used)
            for label, cwd, env, app, token in servers:
                figures = gunicorn_run(
                    cwd=cwd, env=env, app=app, ready_path="/api/", schema_path="/api/schema/", token=token
                )
                for key, value in figures.items():
                    web[label].setdefault(key, []).append(value)

    def row(label: str, values: list[float], used: list[float] | None = None) -> str:
        cpu_s = f"{statistics.median(used):.3f}" if used else ""
        return f"| {label} | {min(values):.3f} | {statistics.median(values):.3f} | {cpu_s} |"

    print()
    print(f"| command ({args.repeat} runs) | best s | median s | median CPU s |")
    print("|---|---|---|---|")
    for label, values in times.items():
        print(row(label, values, cpu[label]))
    for label, figures in web.items():
        print(row(f"{label}: gunicorn spawn → first page answered", figures["ready"]))
    for label, figures in web.items():
        print(row(f"{label}: GET /api/schema/, first in the process", figures["schema_first"]))
        print(row(f"{label}: GET /api/schema/, second", figures["schema_next"]))
    check = statistics.median(times["shieldwall: manage.py check"])
    bare_check = statistics.median(times["bare Django: django-admin check"])
    ready = statistics.median(web["shieldwall"]["ready"])
    bare_ready = statistics.median(web["bare Django"]["ready"])
    print()
    check_cpu = statistics.median(cpu["shieldwall: manage.py check"])
    bare_cpu = statistics.median(cpu["bare Django: django-admin check"])
    print(
        f"beyond bare Django (medians): manage.py check +{check - bare_check:.3f} s "
        f"(+{check_cpu - bare_cpu:.3f} CPU s), gunicorn ready +{ready - bare_ready:.3f} s"
    )
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()

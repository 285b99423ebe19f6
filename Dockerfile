# Shieldwall console image: web (gunicorn), Celery worker and beat all run from it.
# docker-compose.yml wires it to PostgreSQL and Redis; see README.md "Production".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=console.settings \
    SHIELDWALL_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/media \
    DEBUG=0 \
    PORT=8000

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes do not reinstall them.
# (pyproject declares no packages: the code runs from /app, pip only brings the dependencies.)
COPY pyproject.toml ./
RUN pip install .

COPY . .

# Our modules byte-compiled once, here: with PYTHONDONTWRITEBYTECODE every process (each
# command, each gunicorn and Celery worker) would compile them again at start, ~0.6 s of CPU.
# The dependencies pip compiled at install. Static files are collected once, at build time;
# whitenoise serves them compressed and with hashed names. The key only lets settings load:
# it signs nothing and is not kept.
RUN python -m compileall -q console alerts tickets traffic mitigations \
    && SECRET_KEY=collectstatic-only-not-a-secret ALLOWED_HOSTS=localhost \
        python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /app/var \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin shieldwall \
    && mkdir -p /app/var /app/media \
    && chown -R shieldwall:shieldwall /app/var /app/media

USER shieldwall

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=4)"

CMD ["sh", "-c", "exec gunicorn console.wsgi --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-3} --timeout 60 --access-logfile - --forwarded-allow-ips '*'"]

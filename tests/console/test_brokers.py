"""RabbitMQ as the production broker option, Redis the default: settings, health, queue depth.

The depth tests use the real servers on loopback (RabbitMQ 5672, Redis 6379) with a queue of
their own, and skip when a server does not answer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest

from console import health
from tests.shared import REPO

RABBITMQ_URL = os.environ.get("SHIELDWALL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _settings(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY")
    }
    clean.update(env, SHIELDWALL_TESTING="1", DJANGO_SETTINGS_MODULE="console.settings")
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; from console.celery import app;"
        "q = {x.name: [x.queue_arguments, x.exchange.type] for x in app.conf.task_queues};"
        "print(json.dumps({'url': s.CELERY_BROKER_URL, 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS,"
        " 'cache': s.CACHES['default']['BACKEND'], 'queues': q, 'acks_late': app.conf.task_acks_late}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_broker_url_selects_rabbitmq_with_quorum_queues_confirms_and_late_acks(tmp_path):
    amqp = "amqp://shieldwall:secret@rabbitmq:5672//"
    got = _settings(SHIELDWALL_VAR_DIR=str(tmp_path), BROKER_URL=amqp, REDIS_URL="redis://127.0.0.1:6379/3")
    assert got["url"] == amqp
    assert got["options"]["confirm_publish"] is True
    assert got["acks_late"] is True
    assert set(got["queues"]) == {"critical", "default", "analysis", "reports"}
    for arguments, exchange_type in got["queues"].values():
        assert arguments == {"x-queue-type": "quorum"}
        assert exchange_type == "topic"  # what native delayed delivery needs for countdowns
    assert got["cache"].endswith("RedisCache"), "Redis stays the cache with RabbitMQ as the broker"


def test_redis_stays_the_default_broker_with_classic_queues(tmp_path):
    got = _settings(SHIELDWALL_VAR_DIR=str(tmp_path), REDIS_URL="redis://127.0.0.1:6379/3")
    assert got["url"] == "redis://127.0.0.1:6379/3"
    assert "confirm_publish" not in got["options"]
    assert all(arguments is None for arguments, _type in got["queues"].values())


def test_celery_broker_url_is_read_too(tmp_path):
    got = _settings(SHIELDWALL_VAR_DIR=str(tmp_path), CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//")
    assert got["url"].startswith("amqp://")
    assert got["queues"]["critical"][0] == {"x-queue-type": "quorum"}


@pytest.mark.skipif(not _answers("127.0.0.1", 5672), reason="no RabbitMQ on 127.0.0.1:5672")
def test_rabbitmq_health_and_queue_depth(settings):
    from kombu import Connection, Exchange, Queue

    settings.BROKER_URL, settings.BROKER_IS_AMQP = RABBITMQ_URL, True
    name = f"shieldwall-test-{uuid.uuid4().hex[:12]}"
    with Connection(RABBITMQ_URL) as connection:
        queue = Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
        bound = queue.bind(connection.default_channel)
        bound.declare()
        try:
            producer = connection.Producer()
            for n in range(3):
                producer.publish({"n": n}, exchange=bound.exchange, routing_key=name)
            status = health.broker_status()
            assert status["ok"] is True and status["transport"] == "rabbitmq"
            assert health.queue_depths((name, f"{name}-never-declared")) == {name: 3, f"{name}-never-declared": 0}
        finally:
            bound.delete()
            bound.exchange.delete()


def test_rabbitmq_down_is_reported_not_raised(settings):
    settings.BROKER_URL, settings.BROKER_IS_AMQP = "amqp://guest:guest@127.0.0.1:1//", True
    status = health.broker_status()
    assert status["ok"] is False and status["transport"] == "rabbitmq"
    assert health.queue_depths(("critical",)) == {"critical": None}


@pytest.mark.skipif(not _answers("127.0.0.1", 6379), reason="no Redis on 127.0.0.1:6379")
def test_redis_health_and_queue_depth(settings):
    import redis

    settings.BROKER_URL, settings.BROKER_IS_AMQP = REDIS_URL, False
    name = f"shieldwall-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.lpush(name, "a", "b")
        assert health.broker_status()["transport"] == "redis"
        assert health.queue_depths((name,)) == {name: 2}
    finally:
        client.delete(name)

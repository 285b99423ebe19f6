"""With Redis unreachable the cache falls back to process memory: logins and the API keep answering."""

from __future__ import annotations

import logging

import pytest

from bench.harness import free_port
from console import cache as fail_soft
from console.cache import FailSoftRedisCache
from tests.factories import PASSWORD


@pytest.fixture
def redis_down(settings):
    """The cache points at a port where no Redis listens (refused at once)."""
    fail_soft._down_until.clear()
    settings.CACHES = {
        "default": {"BACKEND": "console.cache.FailSoftRedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    }
    yield
    fail_soft._down_until.clear()


def test_an_unreachable_redis_is_replaced_by_process_memory_with_one_warning(caplog):
    backend = FailSoftRedisCache(f"redis://127.0.0.1:{free_port()}/0", {})
    with caplog.at_level(logging.WARNING, logger="console.cache"):
        assert backend.get("missing") is None
        assert backend.add("count", 1, 60)
        assert backend.incr("count") == 2
        assert backend.get_many(["count", "other"]) == {"count": 2}
        backend.set("other", "x", 60)
        backend.delete_many(["other"])
        assert not backend.has_key("other")
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1, "one warning per outage, not one per call"
    fail_soft._down_until.clear()


def test_redis_is_used_again_once_it_answers(settings):
    # The suite's Redis, on a database number nobody else uses, stands in for one that came back.
    location = "redis://127.0.0.1:6379/13"
    backend = FailSoftRedisCache(location, {})
    try:
        backend.set("probe", 1, 5)
    except Exception:
        pytest.skip("no Redis on 127.0.0.1:6379")
    if fail_soft._down_until.get(location):
        pytest.skip("no Redis on 127.0.0.1:6379")
    fail_soft._down_until[location] = 0.0  # an outage whose retry time has come
    backend.set("probe", "from redis", 5)
    assert location not in fail_soft._down_until
    assert backend.fallback.get("probe") is None, "written to Redis, not to memory"
    assert backend.get("probe") == "from redis"
    backend.delete("probe")


def test_a_login_and_an_api_call_by_session_work_with_redis_down(client, engineer, redis_down):
    response = client.post("/login/", {"username": "eli", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/api/customers/").status_code == 200
    assert client.get("/").status_code == 200


def test_the_login_throttle_still_counts_with_redis_down(client, engineer, redis_down, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert client.post("/login/", {"username": "eli", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "eli", "password": PASSWORD}).status_code == 429

"""Redis as the cache, without Redis being a reason that nobody can log in.

The cache holds throttles and debounces (login failures, the API's request rate, a feed's
rate limit, summary debounces): nothing another process must see to stay correct. So while
Redis is unreachable, each process keeps them in its own memory instead of answering 500,
logs a warning once per outage, and tries Redis again after a few seconds. Limits are then
counted per process (a little looser) until Redis is back.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

# Redis refused, reset, timed out or still loading its data: try again this much later.
RETRY_SECONDS = 5.0
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
# Kept short so that a Redis that stops answering (rather than refusing) holds a login for
# about a second, not for the operating system's TCP timeout.
DEFAULT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}

_down_until: dict[str, float] = {}
_lock = threading.Lock()


def _fail_soft(name: str) -> Any:
    def method(self: FailSoftRedisCache, *args: Any, **kwargs: Any) -> Any:
        if self.redis_usable():
            try:
                result = getattr(RedisCache, name)(self, *args, **kwargs)
            except UNREACHABLE as exc:
                self.mark_unreachable(exc)
            else:
                if self._location in _down_until:
                    self.mark_reachable()
                return result
        return getattr(self.fallback, name)(*args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"RedisCache.{name}, or this process's memory while Redis is unreachable."
    return method


class FailSoftRedisCache(RedisCache):
    """Django's Redis cache that falls back to process memory while Redis is unreachable."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        params = {**params, "OPTIONS": {**DEFAULT_OPTIONS, **params.get("OPTIONS", {})}}
        super().__init__(server, params)
        self._location = server if isinstance(server, str) else ",".join(server)
        # One fallback store per process and location: Django builds a backend per thread.
        self.fallback = LocMemCache(f"shieldwall-fallback:{self._location}", {"TIMEOUT": params.get("TIMEOUT", 300)})

    def redis_usable(self) -> bool:
        return _down_until.get(self._location, 0.0) <= time.monotonic()

    def mark_unreachable(self, exc: BaseException) -> None:
        with _lock:
            was_down = self._location in _down_until
            _down_until[self._location] = time.monotonic() + RETRY_SECONDS
        if not was_down:
            logger.warning(
                "cache: Redis unreachable (%s); throttles and debounces are kept in this process's memory "
                "until it answers again",
                exc,
            )

    def mark_reachable(self) -> None:
        with _lock:
            if _down_until.pop(self._location, None) is not None:
                logger.warning("cache: Redis answers again; throttles and debounces are back in Redis")

    def _add_many(self, keys: list[str], timeout: int) -> list[bool]:
        """``add`` of each key (value 1) in one pipelined round trip: a debounce per attack of a delivery."""
        full = [self.make_and_validate_key(key) for key in keys]
        # Django's own serializer (private, not in the stubs), so get() reads these keys back as 1.
        value = self._cache._serializer.dumps(1)  # type: ignore[attr-defined]
        pipe = self._cache.get_client(full[0], write=True).pipeline(transaction=False)
        for key in full:
            pipe.set(key, value, nx=True, ex=timeout)
        return [bool(result) for result in pipe.execute()]

    def add_many(self, keys: list[str], timeout: int) -> list[bool]:
        """Whether each key was added (absent before), as ``add`` answers for one."""
        if not keys:
            return []
        if self.redis_usable():
            try:
                result = self._add_many(keys, timeout)
            except UNREACHABLE as exc:
                self.mark_unreachable(exc)
            else:
                if self._location in _down_until:
                    self.mark_reachable()
                return result
        return [self.fallback.add(key, 1, timeout) for key in keys]

    add = _fail_soft("add")
    get = _fail_soft("get")
    set = _fail_soft("set")
    touch = _fail_soft("touch")
    delete = _fail_soft("delete")
    get_many = _fail_soft("get_many")
    has_key = _fail_soft("has_key")
    incr = _fail_soft("incr")
    set_many = _fail_soft("set_many")
    delete_many = _fail_soft("delete_many")
    clear = _fail_soft("clear")

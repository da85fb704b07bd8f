"""Redis as the store that several instances share (REDIS_URL): Django's RedisCache, made to fail fast.

A dead or hung Redis must not hold requests up. Connections and replies time out after a fraction of a second,
redis-py's retries are off, and after a failure a process skips Redis for RETRY_AFTER_FAILURE_SECONDS (a circuit
breaker), so an outage costs one request per process per second a timeout at most, and the others nothing.
Every operation that cannot reach Redis raises StoreUnavailable; each caller decides what that means:
the count cache ("default", SharedCountCache) counts again, the security store (SecurityRedisCache) lets
hospital.throttles refuse logins and hospital.authentication ask the database instead.

The outage is logged once per process: a WARNING when it starts, an INFO when Redis answers again.
"""

import contextlib
import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 0.1
REPLY_TIMEOUT_SECONDS = 0.25
RETRY_AFTER_FAILURE_SECONDS = 1.0


class StoreUnavailable(Exception):
    """Redis cannot be reached now (or was not, less than RETRY_AFTER_FAILURE_SECONDS ago)."""


class Breaker:
    """One per process and Redis server: whether Redis is down, and until when not to try it again."""

    def __init__(self):
        self.down = False
        self.retry_at = 0.0

    def call(self, operation, *args, **kwargs):
        if self.down and time.monotonic() < self.retry_at:
            raise StoreUnavailable
        try:
            result = operation(*args, **kwargs)
        except RedisError as error:
            self.retry_at = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
            if not self.down:
                self.down = True
                logger.warning("redis is unreachable; the API serves without it", extra={"error": type(error).__name__})
            raise StoreUnavailable from error
        if self.down:
            self.down = False
            logger.info("redis is reachable again")
            for callback in recovery_callbacks:
                callback()
            # Again, after the callbacks' writes: a read must see what they restored.
            return self.call(operation, *args, **kwargs)
        return result


breakers: dict[str, Breaker] = {}
# Run in a process each time Redis answers it again after an outage (hospital.revocation resends its writes).
recovery_callbacks: list = []


class FailFastRedisCacheClient(RedisCacheClient):
    """Django's Redis client with short timeouts, no retries, and every operation behind the breaker."""

    def __init__(self, servers, **options):
        options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT_SECONDS)
        options.setdefault("socket_timeout", REPLY_TIMEOUT_SECONDS)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        super().__init__(servers, **options)
        self.breaker = breakers.setdefault(servers[0], Breaker())


def guarded(name: str):
    operation = getattr(RedisCacheClient, name)

    def call(self, *args, **kwargs):
        return self.breaker.call(operation, self, *args, **kwargs)

    call.__name__ = name
    return call


for _name in (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
):
    setattr(FailFastRedisCacheClient, _name, guarded(_name))


class SecurityRedisCache(RedisCache):
    """The security store in Redis: raises StoreUnavailable when Redis cannot answer (hospital.security_store)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = FailFastRedisCacheClient

    def ping(self) -> None:
        """Raises StoreUnavailable unless Redis answers now (hospital.views.service.ReadyView)."""
        client = self._cache
        client.breaker.call(lambda: client.get_client(write=False).ping())


class SharedCountCache(SecurityRedisCache):
    """The count cache in Redis: while Redis is unreachable, every read is a miss and every write is dropped."""

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except StoreUnavailable:
            return default

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with contextlib.suppress(StoreUnavailable):
            super().set(key, value, timeout, version)

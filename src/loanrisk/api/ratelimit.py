"""Per-API-key rate limits: a token bucket in this process, or one shared through Redis.

Each key may send ``per_minute`` requests a minute, in bursts of up to that many. With several
service processes (workers, machines) behind a load balancer, an in-process bucket lets a key
send N times its limit; ``LOANRISK_RATE_LIMIT_URL=redis://HOST:PORT/DB`` gives every process the
same bucket. The Redis bucket is updated by one Lua script (atomic: concurrent requests from
several processes never both take the last token) against the Redis server's clock (so the
processes' clocks need not agree), and expires once it would be full again.

When Redis cannot be reached (refused, a 250 ms timeout, an error), the request is limited by this
process's own bucket instead, never refused for it: applications keep flowing while the limiter's
store is down. Redis is tried again after ``RETRY_SECONDS``; each fallback is counted in
``loanrisk_rate_limit_fallbacks_total`` and logged at most once per retry period, with the URL's
password masked.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from loanrisk.errors import LoanriskError

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
TIMEOUT_SECONDS = 0.25
KEY_PREFIX = "loanrisk:rate:"
SCHEMES = ("redis", "rediss", "unix")
# KEYS[1] the bucket; ARGV[1] capacity; ARGV[2] tokens per second. Returns the wait in seconds
# (as text: Lua numbers returned to Redis are truncated to integers), "0" when a token was taken.
TOKEN_BUCKET = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class Limiter(Protocol):
    """What the API asks of a rate limiter."""

    per_minute: int
    backend: str

    async def take(self, key: Any) -> float:
        """0.0 if the request may go on, else the seconds to wait before retrying."""

    async def ping(self, *, log_failure: bool = True) -> bool:
        """Whether the buckets' store answers (always, for buckets in this process)."""

    async def close(self) -> None:
        """Release connections."""


def retry_after(wait: float) -> str:
    """A Retry-After header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))


class RateLimiter:
    """In-process token bucket per API key: ``per_minute`` requests, bursts up to that many."""

    backend = "process"

    def __init__(self, per_minute: int) -> None:
        self.per_minute = max(int(per_minute), 1)
        self.capacity = float(self.per_minute)
        self.rate = self.capacity / 60.0
        self._buckets: dict[Any, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take_now(self, key: Any) -> float:
        """0.0 if the request may go on, else the seconds to wait (synchronous)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # keys long idle are full again: forget them
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if now - v[1] < 60.0}
            return (1.0 - tokens) / self.rate

    async def take(self, key: Any) -> float:
        return self.take_now(key)

    async def ping(self, *, log_failure: bool = True) -> bool:
        return True

    async def close(self) -> None:
        return None


def masked(url: str) -> str:
    """``url`` with any password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class RedisRateLimiter:
    """The same token bucket, kept in Redis and shared by every process that uses ``url``."""

    backend = "redis"

    def __init__(self, url: str, per_minute: int, *,
                 on_fallback: Callable[[], None] | None = None) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.per_minute = max(int(per_minute), 1)
        self.rate = self.per_minute / 60.0
        self.local = RateLimiter(per_minute)  # while Redis cannot be reached
        self.on_fallback = on_fallback
        self._client = aioredis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS,
            health_check_interval=30)
        self._script = self._client.register_script(TOKEN_BUCKET)
        self.retry_seconds = RETRY_SECONDS
        self._down_until = 0.0
        self._logged_until = 0.0

    async def take(self, key: Any) -> float:
        now = time.monotonic()
        if now >= self._down_until:
            try:
                wait = await self._script(keys=[f"{KEY_PREFIX}{key}"],
                                          args=[self.per_minute, repr(self.rate)])
                return float(wait)
            except Exception as exc:  # redis-py raises its own and OS/timeout errors
                self._fell_back(now, exc)
        if self.on_fallback is not None:
            self.on_fallback()
        return self.local.take_now(key)

    def _fell_back(self, now: float, exc: Exception) -> None:
        self._down_until = now + self.retry_seconds
        if now >= self._logged_until:
            self._logged_until = now + self.retry_seconds
            log.warning("rate-limit store at %s unreachable (%s); limiting per process, retrying "
                        "in %.0f s", masked(self.url), type(exc).__name__, self.retry_seconds)

    async def ping(self, *, log_failure: bool = True) -> bool:
        """Whether Redis answers now (the service's start-up check logs a failure)."""
        try:
            return bool(await self._client.ping())
        except Exception as exc:
            if log_failure:
                self._fell_back(time.monotonic(), exc)
            return False

    async def close(self) -> None:
        await self._client.aclose()


def make_limiter(url: str, per_minute: int, *,
                 on_fallback: Callable[[], None] | None = None) -> Limiter:
    """The limiter a configuration asks for: Redis when ``url`` is set, else in-process.

    Raises LoanriskError for a URL that is not redis://, rediss:// or unix://.
    """
    if not url:
        return RateLimiter(per_minute)
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise LoanriskError(f"LOANRISK_RATE_LIMIT_URL must be a Redis URL (redis://HOST:PORT/DB, "
                            f"rediss:// or unix://), not {masked(url)!r}")
    return RedisRateLimiter(url, per_minute, on_fallback=on_fallback)

"""Per-key rate limits: the in-process bucket, and the bucket shared through the real Redis on
127.0.0.1:6379 (two limiters stand for two service processes)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from loanrisk.api.ratelimit import RateLimiter, RedisRateLimiter, make_limiter, masked, retry_after
from loanrisk.errors import LoanriskError

REDIS = "redis://127.0.0.1:6379/0"


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_process_bucket_allows_a_burst_then_says_how_long_to_wait() -> None:
    lim = RateLimiter(3)
    waits = [lim.take_now("k") for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and 19.0 < waits[3] <= 20.0  # one token per 20 s
    assert lim.take_now("other") == 0.0  # each key has its own bucket
    assert retry_after(waits[3]) == "20" and retry_after(0.01) == "1"


def test_two_processes_share_one_bucket_in_redis() -> None:
    async def go() -> tuple[list[float], float]:
        a, b = RedisRateLimiter(REDIS, 5), RedisRateLimiter(REDIS, 5)
        key = uuid.uuid4()
        try:
            assert await a.ping()
            waits = [await (a if i % 2 else b).take(key) for i in range(6)]
            other = await b.take(uuid.uuid4())
        finally:
            await a.close()
            await b.close()
        return waits, other

    waits, other = _run(go())
    assert waits[:5] == [0.0] * 5, waits  # 5 a minute in all, whichever process answers
    assert 11.0 < waits[5] <= 12.0  # one token per 12 s
    assert other == 0.0


def test_concurrent_requests_never_both_take_the_last_token() -> None:
    async def go() -> list[float]:
        limiters = [RedisRateLimiter(REDIS, 10) for _ in range(2)]
        key = uuid.uuid4()
        try:
            return list(await asyncio.gather(*[limiters[i % 2].take(key) for i in range(40)]))
        finally:
            for lim in limiters:
                await lim.close()

    waits = _run(go())
    assert sum(w == 0.0 for w in waits) == 10


def test_redis_down_limits_per_process_and_never_refuses_for_it(
        caplog: pytest.LogCaptureFixture) -> None:
    fallbacks: list[int] = []
    url = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1

    async def go() -> list[float]:
        lim = RedisRateLimiter(url, 3, on_fallback=lambda: fallbacks.append(1))
        try:
            assert not await lim.ping()
            return [await lim.take("k") for _ in range(4)]
        finally:
            await lim.close()

    with caplog.at_level(logging.WARNING, logger="loanrisk.api.ratelimit"):
        waits = _run(go())
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0  # this process's own bucket
    assert len(fallbacks) == 4
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and "unreachable" in logged[0] and "limiting per process" in logged[0]
    assert "s3cret" not in logged[0] and "redis://:***@127.0.0.1:1/0" in logged[0]


def test_configuration_picks_the_limiter_and_refuses_other_urls() -> None:
    assert isinstance(make_limiter("", 10), RateLimiter)
    lim = make_limiter(REDIS, 10)
    assert isinstance(lim, RedisRateLimiter) and lim.backend == "redis"
    _run(lim.close())
    with pytest.raises(LoanriskError, match=r"LOANRISK_RATE_LIMIT_URL must be a Redis URL"
                                            r".*'http://u:\*\*\*@cache:80/'"):
        make_limiter("http://u:pw@cache:80/", 10)
    assert masked("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_back_to_the_shared_bucket_once_redis_returns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A Redis of the test's own (no persistence) stopped and started again on the same port."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed here")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return proc
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    fallbacks: list[int] = []

    async def go() -> list[float]:
        lim = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", 2,
                               on_fallback=lambda: fallbacks.append(1))
        lim.retry_seconds = 0.2
        server = start()
        try:
            waits = [await lim.take("k")]  # shared
            server.terminate()
            server.wait(10)
            waits.append(await lim.take("k"))  # Redis gone: this process's own bucket
            server = start()
            await asyncio.sleep(0.3)
            waits += [await lim.take("k") for _ in range(3)]  # shared again (a fresh bucket)
            return waits
        finally:
            await lim.close()
            server.terminate()
            server.wait(10)

    waits = _run(go())
    assert len(fallbacks) == 1  # only the request made while Redis was down
    assert waits[:4] == [0.0] * 4 and waits[4] > 0, waits  # 2 a minute in Redis's new bucket

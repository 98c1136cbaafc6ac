"""Issue 14: the database goes down and comes back while `loanrisk serve` runs (PostgreSQL).

The shared PostgreSQL server cannot be stopped, so the service reaches it through a small TCP
proxy on 127.0.0.1 that the test cuts (every open connection dropped, new ones refused) and
restores. While it is down the service keeps answering: writes and reads get a 503 with a clear
reason (never a 500), scoring with a key it verified lately still works (an unknown key is a 503:
it cannot be checked), and nothing it logs holds a
traceback or a request value; once the database is back it recovers by itself.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import fresh_pg_schema  # noqa: E402
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402
from service_proc import Server, free_port, new_key, service_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PG_PORT = 5432


class Proxy:
    """A TCP proxy 127.0.0.1:port -> 127.0.0.1:5432 that can be cut and restored."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", PG_PORT)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self.pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.pairs.discard(pair)

    async def _up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                 reuse_address=True)

    async def _down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for a, b in list(self.pairs):
            a.transport.abort()
            b.transport.abort()
        self.pairs.clear()

    def up(self) -> None:
        self._call(self._up())

    def down(self) -> None:
        self._call(self._down())

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def proxied_pg() -> Iterator[tuple[Proxy, str]]:
    proxy = Proxy()
    proxy.up()
    with fresh_pg_schema() as url:
        yield proxy, url.replace(f"127.0.0.1:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    proxy.close()


def test_database_down_and_back(tmp_path: Path, proxied_pg: tuple[Proxy, str]) -> None:
    proxy, url = proxied_pg
    env = service_env(tmp_path / "home", LOANRISK_RATE_LIMIT_PER_MINUTE="100000")
    model = build_model_dir(tmp_path / "model")
    key = new_key(env, "--channel", "web", "--database", url)
    h = {"Authorization": f"Bearer {key}"}
    canary = f"canary-{uuid.uuid4().hex[:10]}"
    log = tmp_path / "s.log"
    server = Server(["--model-dir", str(model), "--database", url], env, log)
    server.start(timeout=60)
    acked: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            def submit(i: int) -> httpx.Response:
                return c.post("/v1/applications", json={**(GOOD if i % 2 else BAD),
                                                        "external_ref": f"{canary}-{i}"},
                              headers={**h, "Idempotency-Key": f"{canary}-{i}"})

            for i in range(5):
                r = submit(i)
                assert r.status_code == 201, r.text
                acked.append(r.json()["id"])

            proxy.down()
            down: Counter[int] = Counter()
            t0 = time.monotonic()
            for i in range(5, 25):  # past the 5 s key cache, too
                r = submit(i)
                down[r.status_code] += 1
                assert r.status_code == 503, r.text
                assert "store is unavailable" in r.json()["detail"], r.text
                assert canary not in r.text
                s = c.post("/v1/score", json=GOOD, headers=h)  # a key it knows: still scores
                assert s.status_code == 200, s.text
                down[s.status_code] += 1
                lst = c.get("/v1/applications", headers=h)
                assert lst.status_code == 503, lst.text
                time.sleep(0.3)
            took = time.monotonic() - t0
            assert took < 40, took  # answered promptly, not hanging on the database
            stranger = c.post("/v1/score", json=GOOD, headers={"Authorization": "Bearer lr_x"})
            assert stranger.status_code == 503, stranger.text  # cannot be checked: not a 401

            proxy.up()
            deadline = time.monotonic() + 20
            while True:  # recovers by itself: the same idempotency keys now store
                r = submit(5)
                if r.status_code == 201 or time.monotonic() > deadline:
                    break
                assert r.status_code == 503, r.text
                time.sleep(0.5)
            assert r.status_code == 201, r.text
            acked.append(r.json()["id"])
            for i in range(6, 10):
                r = submit(i)
                assert r.status_code == 201, r.text
                acked.append(r.json()["id"])
            assert c.get("/v1/applications", headers=h).status_code == 200
    finally:
        server.stop()
    text = log.read_text()
    print(f"while down: {dict(down)} in {took:.1f} s")
    assert "Traceback" not in text, text[-3000:]
    assert canary not in text and key not in text
    from loanrisk.store import Store

    store = Store(url)
    try:
        assert store.count_applications() == len(acked) == 10
    finally:
        store.close()

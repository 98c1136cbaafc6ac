"""Issue 14, finding 8: SIGTERM during load drains instead of resetting requests.

A real `loanrisk serve` takes concurrent POST /v1/applications (half the clients reuse keep-alive
connections, half open one per request) and gets SIGTERM while they are in flight. Every request
must either get its answer or be refused a connection (the port closed) before it was accepted:
no connection reset, no cut answer. Every 201 is in the store afterwards, and the process exits
within its grace period. SQLite, PostgreSQL, and PostgreSQL with two worker processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import fresh_pg_schema  # noqa: E402
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402
from service_proc import Server, new_key, service_env  # noqa: E402

pytestmark = pytest.mark.slow
GRACE = 10.0
CLIENTS = int(os.environ.get("SIGTERM_CLIENTS", "32"))
SLOW_CLIENTS = 4


@dataclass
class Tally:
    """What the clients saw."""

    acked: dict[str, str] = field(default_factory=dict)  # idempotency key -> application id
    refused: int = 0  # connection refused: the port was closed before the request was accepted
    resets: list[str] = field(default_factory=list)  # accepted, then cut (the failure)
    other: Counter[int] = field(default_factory=Counter)  # answers other than 201
    in_flight_at_term: int = 0  # requests sent before SIGTERM and answered after it
    slow_served: int = 0  # slow clients (request completed after SIGTERM) answered 201
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_then_sigterm(server: Server, key: str, *, workers: int = 1) -> tuple[Tally, float]:
    """Fire CLIENTS clients at the service, SIGTERM it under load; (tally, seconds to exit)."""
    tally = Tally()
    term_at: list[float] = []
    warm = threading.Barrier(CLIENTS + 1)

    def client(n: int) -> None:
        keep_alive = n % 2 == 0
        pool = httpx.Client(timeout=GRACE + 20) if keep_alive else None
        first = True
        try:
            for i in range(100_000):
                idem = f"c{n}-{i}-{uuid.uuid4().hex[:6]}"
                body = {**(GOOD if i % 2 else BAD), "external_ref": idem}
                headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}
                sent = time.monotonic()
                try:
                    if pool is not None:
                        r = pool.post(server.url + "/v1/applications", json=body, headers=headers)
                    else:
                        r = httpx.post(server.url + "/v1/applications", json=body,
                                       headers=headers, timeout=GRACE + 20)
                except httpx.ConnectError:
                    with tally.lock:
                        tally.refused += 1
                    return  # the port is closed: the service stopped accepting
                except httpx.HTTPError as exc:
                    with tally.lock:
                        tally.resets.append(f"{type(exc).__name__}: {exc}")
                    return
                finally:
                    if first:
                        first = False
                        warm.wait(30)
                with tally.lock:
                    if r.status_code == 201:
                        tally.acked[idem] = r.json()["id"]
                    else:
                        tally.other[r.status_code] += 1
                    if term_at and sent < term_at[0]:
                        tally.in_flight_at_term += 1
        finally:
            if pool is not None:
                pool.close()

    def slow_client(n: int, connected: threading.Event) -> None:
        """A client on a slow link: connected (and accepted) before SIGTERM, the rest of its
        request arrives after it. uvicorn alone closed such a connection on SIGTERM."""
        idem = f"slow{n}-{uuid.uuid4().hex[:6]}"
        body = json.dumps({**GOOD, "external_ref": idem}).encode()
        head = (f"POST /v1/applications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {key}\r\nIdempotency-Key: {idem}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=GRACE + 20) as s:
                s.sendall(head[:40])
                connected.set()
                while not term_at:
                    time.sleep(0.01)
                time.sleep(0.3)  # the server is draining by now
                s.sendall(head[40:] + body)
                raw = b""
                while chunk := s.recv(65536):
                    raw += chunk
        except OSError as exc:
            with tally.lock:
                tally.resets.append(f"slow client: {type(exc).__name__}: {exc}")
            return
        status = raw.split(b" ", 2)[1] if raw.startswith(b"HTTP/1.1 ") else b"none"
        with tally.lock:
            if status == b"201":
                tally.acked[idem] = json.loads(raw.split(b"\r\n\r\n", 1)[1])["id"]
                tally.slow_served += 1
            elif status == b"none":
                tally.resets.append("slow client: connection closed without an answer")
            else:
                tally.other[int(status)] += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    warm.wait(30)  # every client has had an answer: the service is under full load
    slow = [(threading.Event(), n) for n in range(SLOW_CLIENTS)]
    threads += [threading.Thread(target=slow_client, args=(n, ev), daemon=True)
                for ev, n in slow]
    for t in threads[CLIENTS:]:
        t.start()
    for ev, _n in slow:
        assert ev.wait(10)
    time.sleep(1.0)
    assert server.proc is not None
    term_at.append(time.monotonic())
    os.kill(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(GRACE + 15)
    except subprocess.TimeoutExpired:
        server.kill()
    took = time.monotonic() - term_at[0]
    for t in threads:
        t.join(GRACE + 25)
    return tally, took


def check(tally: Tally, took: float, url: str, log: Path) -> None:
    """No reset, every client stopped by a refused connection, every 201 stored, in time."""
    text = log.read_text()
    summary = (f"{len(tally.acked)} acknowledged, {tally.in_flight_at_term} in flight at "
               f"SIGTERM, {tally.slow_served} slow clients served, {tally.refused} refused, "
               f"resets {tally.resets[:3]} ({len(tally.resets)}), other {dict(tally.other)}, "
               f"exit after {took:.1f} s")
    print(summary)
    assert not tally.resets, summary
    assert not tally.other, summary
    assert tally.refused == CLIENTS, summary  # each client ran until the port was closed
    assert tally.in_flight_at_term > 0, summary  # SIGTERM did arrive during load
    assert tally.slow_served == SLOW_CLIENTS, summary
    assert took < GRACE, summary
    assert "Traceback" not in text, text[-3000:]
    from loanrisk.store import Store

    store = Store(url)
    try:
        missing = [k for k, v in tally.acked.items()
                   if store.get_application(uuid.UUID(v)) is None]
        assert not missing, missing[:5]
        assert store.count_applications() == len(tally.acked)  # and nothing unacknowledged
    finally:
        store.close()


@pytest.fixture
def pg() -> Iterator[str]:
    with fresh_pg_schema() as url:
        yield url


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                                   pytest.param("postgres-2-workers",
                                                marks=pytest.mark.postgres)])
def test_sigterm_under_load_drains_without_resets(tmp_path: Path, store: str,
                                                  request: pytest.FixtureRequest) -> None:
    env = service_env(tmp_path / "home", LOANRISK_RATE_LIMIT_PER_MINUTE="1000000")
    model = build_model_dir(tmp_path / "model")
    url = (f"sqlite:///{tmp_path / 'store.db'}" if store == "sqlite"
           else str(request.getfixturevalue("pg")))
    workers = 2 if store.endswith("workers") else 1
    key = new_key(env, "--channel", "web", "--database", url)
    server = Server(["--model-dir", str(model), "--database", url, "--workers", str(workers),
                     "--grace-period", str(GRACE)], env, tmp_path / "s.log")
    server.start(timeout=60)
    try:
        tally, took = load_then_sigterm(server, key, workers=workers)
    finally:
        server.kill()
    check(tally, took, url, tmp_path / "s.log")


def test_grace_period_setting_is_read(tmp_path: Path) -> None:
    """LOANRISK_GRACE_SECONDS is the default of --grace-period; a negative one is refused."""
    from loanrisk.config import Settings

    assert Settings().grace_seconds == 30.0
    assert Settings(grace_seconds=5).grace_seconds == 5.0
    with pytest.raises(ValueError, match="grace_seconds"):
        Settings(grace_seconds=-1)

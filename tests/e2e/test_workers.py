"""`loanrisk serve --workers 2` for real: two uvicorn worker processes on one port, one
PostgreSQL store, the rate limit in Redis, /metrics summed over both workers."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import fresh_pg_schema  # noqa: E402
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402
from service_proc import LOANRISK, Server, new_key, service_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg() -> Iterator[str]:
    with fresh_pg_schema() as url:
        yield url


def _metric(text: str, name: str, **labels: str) -> list[float]:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(name + "{") and all(w in line for w in want)]


def test_two_workers_share_port_store_rate_limit_and_metrics(tmp_path: Path, pg: str) -> None:
    env = service_env(tmp_path / "home", LOANRISK_RATE_LIMIT_PER_MINUTE="40")
    model = build_model_dir(tmp_path / "model")
    key = new_key(env, "--channel", "web", "--database", pg)
    h = {"Authorization": f"Bearer {key}"}
    server = Server(["--model-dir", str(model), "--database", pg, "--workers", "2",
                     "--rate-limit-url", "redis://127.0.0.1:6379/0"], env, tmp_path / "s.log")
    server.start()
    try:
        codes = []
        started = time.monotonic()
        for i in range(30):  # a new connection each: the kernel spreads them over the workers
            r = httpx.post(server.url + "/v1/applications", json=GOOD if i % 2 else BAD,
                           headers={**h, "Idempotency-Key": f"k{i}"}, timeout=10)
            codes.append(r.status_code)
        assert codes == [201] * 30, codes
        # one bucket for the key whichever worker answers: 40 a minute in all, not 40 each (with
        # a bucket per worker none of these would be refused); the bucket refills 2 tokens every
        # 3 s, so a slow machine may see a request or two more go through
        more = [httpx.post(server.url + "/v1/score", json=GOOD, headers=h, timeout=10)
                .status_code for _ in range(20)]
        refilled = int((time.monotonic() - started) * 40 / 60)
        assert more[:10] == [200] * 10, more
        assert 10 <= more.count(200) <= 10 + refilled, (more, refilled)
        assert set(more) <= {200, 429}, more
        text = httpx.get(server.url + "/metrics", timeout=10).text
        # counters summed over both workers, whichever answered /metrics
        assert _metric(text, "loanrisk_requests_total", route="/v1/applications",
                       status="201") == [30.0]
        assert sum(_metric(text, "loanrisk_decisions_total", endpoint="applications")) == 30
        pids = set(re.findall(r'loanrisk_model_info\{[^}]*pid="(\d+)"', text))
        assert len(pids) == 2, text  # both workers loaded the model
    finally:
        server.stop()
    from loanrisk.store import Store

    store = Store(pg)
    try:
        assert store.count_applications() == 30  # every 201 is in the one store
    finally:
        store.close()


def test_workers_refuse_the_embedded_sqlite_store(tmp_path: Path) -> None:
    env = service_env(tmp_path / "home")
    model = build_model_dir(tmp_path / "model")
    out = subprocess.run([LOANRISK, "serve", "--model-dir", str(model), "--workers", "2"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--workers needs a store that several processes write at once" in " ".join(
        out.stderr.split())

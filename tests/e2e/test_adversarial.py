"""Issue 14's adversarial suite against a real `loanrisk serve`, on SQLite and PostgreSQL.

* schemathesis, every check, for a channel key and an admin key: 0 failures, 0 answers 5xx;
* privacy: canary values (ids, references, free text, outcome words and sources, NUL-bearing
  variants, bad headers, query and path values) appear nowhere outside the store: not in the
  service log, /metrics, any error body or any file under the loanrisk home; no error body is
  over 64 KiB.

Figures are printed (pytest -s) and kept in bench/RESULTS.md ("Adversarial suite (issue 14)").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "api"))
from helpers import fresh_pg_schema  # noqa: E402
from model_factory import GOOD, build_model_dir, register_dir, write_eval  # noqa: E402
from service_proc import Server, new_key, service_env  # noqa: E402

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
EXAMPLES = 160  # per operation and phase: over 2,000 cases per key role and store
NAME = "adversarial"
SEED = 14
LIMIT = 64 * 1024


@dataclass
class Service:
    server: Server
    env: dict[str, str] = field(repr=False)
    home: Path
    log: Path
    web: str = field(repr=False)
    admin: str = field(repr=False)
    store: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """`loanrisk serve --model-dir` on a free port, a web key and an admin key, on each store."""
    with fresh_pg_schema() if request.param == "postgres" else _no_pg() as url:
        home = tmp_path / "home"
        extra = {"LOANRISK_RATE_LIMIT_PER_MINUTE": "1000000"}
        env = service_env(home, **extra)
        if url:
            env["LOANRISK_DATABASE_URL"] = url
        # a registered champion and a second version: the admin endpoints (versions,
        # promote, rollback, challenger, reload) are exercised for real, not answered 409
        from loanrisk.config import Settings
        from loanrisk.registry import Registry

        reg = Registry(Settings(home=home))
        v1 = register_dir(reg, write_eval(build_model_dir(tmp_path / "v1", name=NAME)),
                          name=NAME)
        register_dir(reg, write_eval(build_model_dir(tmp_path / "v2", name=NAME, w_dti=0.2)),
                     name=NAME)
        assert reg.promote(NAME, v1).promoted
        web = new_key(env, "--channel", "web")
        admin = new_key(env, "--channel", "call_center", "--admin")
        log = tmp_path / "serve.log"
        server = Server(["--model", NAME, "--log-level", "info"], env, log)
        server.start()
        try:
            yield Service(server, env, home, log, web, admin, request.param)
        finally:
            server.stop()


class _no_pg:  # noqa: N801 - a context manager standing in for fresh_pg_schema
    def __enter__(self) -> str:
        return ""

    def __exit__(self, *_exc: object) -> None:
        return None


def _answers(url: str, status: str = "5") -> int:
    """Answers so far whose status starts with ``status``, from the service's own /metrics."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return int(sum(float(m.group(2)) for m in re.finditer(
        r'^loanrisk_requests_total\{[^}]*status="(' + status + r'\d*)"[^}]*\} ([0-9.e+]+)$',
        text, re.M)))


def _schemathesis(svc: Service, key: str, report: Path) -> dict[str, object]:
    cmd = [SCHEMATHESIS, "--config-file", str(HERE / "schemathesis.toml"), "run",
           svc.server.url + "/openapi.json", "--checks", "all",
           "-H", f"Authorization: Bearer {key}", "--seed", str(SEED), "--generation-deterministic",
           "--max-examples", str(EXAMPLES), "--workers", "1", "--no-color",
           "--suppress-health-check", "all",
           "--report", "json", "--report-json-path", str(report)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "st_hooks",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300,
                         cwd=report.parent)
    took = time.perf_counter() - t0
    assert report.exists(), out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(report.read_text())
    failures = "\n".join(line[:300] for line in
                         out.stdout[out.stdout.find("FAILURES"):].splitlines())[:8000]
    return {"report": data, "seconds": took, "output": failures, "exit": out.returncode}


def test_schemathesis_all_checks_for_each_key_role(service: Service) -> None:
    figures = []
    for role, key in (("channel key (web)", service.web), ("admin key", service.admin)):
        before, answered = _answers(service.server.url), _answers(service.server.url, "")
        run = _schemathesis(service, key, service.home.parent / f"st-{role[:3]}.json")
        rep = run["report"]
        assert isinstance(rep, dict)
        cases = rep["test_cases"]["generated"]
        server_errors = _answers(service.server.url) - before
        assert _answers(service.server.url, "") - answered >= cases // 2  # metrics see them
        figures.append({"store": service.store, "role": role, "cases": cases,
                        "failures": rep["test_cases"]["with_failures"],
                        "errors": len(rep["errors"]), "5xx": server_errors,
                        "seconds": round(float(run["seconds"]), 1)})
        assert rep["failures"] == [] and rep["errors"] == [], run["output"]
        assert run["exit"] == 0, run["output"]
        assert server_errors == 0
        assert cases >= 2000  # per key role and store
        assert set(rep["phases"]) >= {"examples", "coverage", "fuzzing", "stateful"}
    print("\nschemathesis figures:", json.dumps(figures))
    log = service.log.read_text()
    assert "Traceback" not in log and "answered 500" not in log


def _canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {name: f"CANARY{name.upper()}{tag}" for name in
            ("appl", "ref", "text", "source", "word", "bref", "bsrc", "idem", "rid", "query",
             "since", "cursor", "path", "nul")}


def test_privacy_canaries_never_leave_the_store(service: Service) -> None:
    can = _canaries()
    nul = can["nul"] + "\u0000tail"
    bodies: list[httpx.Response] = []
    web = {"Authorization": f"Bearer {service.web}"}
    admin = {"Authorization": f"Bearer {service.admin}"}
    with httpx.Client(base_url=service.server.url, timeout=10) as c:
        def send(method: str, path: str, **kw: object) -> httpx.Response:
            r = c.request(method, path, **kw)  # type: ignore[arg-type]
            bodies.append(r)
            return r

        ok = send("POST", "/v1/applications", headers={**web, "Idempotency-Key": can["idem"]},
                  json={**GOOD, "applicant_id": can["appl"], "external_ref": can["ref"],
                        "emp_title": can["text"]})
        assert ok.status_code == 201, ok.text
        app_id = ok.json()["id"]
        assert send("POST", f"/v1/applications/{app_id}/outcome", headers=web,
                    json={"outcome": "bad", "source": can["source"]}).status_code == 201
        # stored values come back to their owner only: those answers are not error bodies
        bodies.clear()
        hostile = [
            ("POST", "/v1/applications", {"headers": web, "json": {**GOOD, "applicant_id": nul}}),
            ("POST", "/v1/applications", {"headers": web, "json": {**GOOD, "external_ref": nul}}),
            ("POST", "/v1/applications", {"headers": web, "json": {**GOOD, "emp_title": nul}}),
            ("POST", "/v1/score", {"headers": web, "json": [{**GOOD, "applicant_id": nul}] * 3}),
            ("POST", "/v1/applications", {"headers": {**web, "Idempotency-Key":
                                                      (can["idem"] + "é").encode()},
                                          "json": GOOD}),
            ("POST", "/v1/applications", {"headers": {**web, "Idempotency-Key": "a\tb"},
                                          "json": {**GOOD, "applicant_id": can["appl"]}}),
            ("POST", "/v1/score", {"headers": {**web, "X-Request-ID": can["rid"] + " !"},
                                   "json": {**GOOD, "income": "x"}}),
            ("POST", f"/v1/applications/{app_id}/outcome",
             {"headers": web, "json": {"outcome": can["word"], "source": nul}}),
            ("POST", f"/v1/applications/{app_id}/outcome",
             {"headers": web, "json": {"outcome": nul}}),
            ("POST", "/v1/admin/outcomes", {"headers": admin, "json": {"outcomes": [
                {"external_ref": can["bref"], "outcome": can["word"], "source": can["bsrc"]},
                {"external_ref": nul, "outcome": "bad"},
                {"application_id": app_id, "outcome": "bad", "source": nul,
                 "recorded_at": can["since"]}]}}),
            ("GET", "/v1/applications", {"headers": web, "params": {"applicant_id": nul}}),
            ("GET", "/v1/applications", {"headers": web, "params": {"external_ref": nul}}),
            ("GET", "/v1/applications", {"headers": web, "params": {"since": can["since"]}}),
            ("GET", "/v1/applications", {"headers": web, "params": {"before": can["cursor"]}}),
            ("GET", "/v1/applications", {"headers": web, "params": {"limit": can["query"]}}),
            ("GET", f"/v1/applications/{can['path']}", {"headers": web}),
            ("POST", f"/v1/applications/{can['path']}/outcome",
             {"headers": web, "json": {"outcome": "bad"}}),
            ("POST", "/v1/admin/promote", {"headers": admin, "json": {"version": can["query"]}}),
            ("PUT", "/v1/admin/challenger", {"headers": admin,
                                             "json": {"mode": can["word"], "version": 2}}),
        ]
        for method, path, kw in hostile:
            r = send(method, path, **kw)
            assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:300])
        metrics = c.get("/metrics").text
    service.server.stop()  # flush and close everything it writes
    texts = {"service log": service.log.read_text(errors="replace"), "/metrics": metrics}
    for i, r in enumerate(bodies):
        assert len(r.content) <= LIMIT, (i, len(r.content))
        texts[f"error body {i} ({r.request.method} {r.request.url.path[:40]})"] = r.text
        texts[f"error headers {i}"] = json.dumps(dict(r.headers))
    store_files = {"loanrisk.db", "loanrisk.db-wal", "loanrisk.db-shm", "loanrisk.db-journal"}
    files = [p for p in service.home.rglob("*") if p.is_file() and p.name not in store_files]
    for p in files:
        texts[str(p.relative_to(service.home))] = p.read_bytes().decode("latin-1")
    found = {where: [n for n, v in can.items() if v in text] for where, text in texts.items()}
    leaks = {where: names for where, names in found.items() if names}
    print(f"\nprivacy ({service.store}): {len(can)} canaries, {len(bodies)} error bodies, "
          f"{len(files)} files under home, max error body "
          f"{max(len(r.content) for r in bodies)} bytes; leaks: {leaks}")
    assert leaks == {}

"""Decision-service benchmarks (issue 3); writes its section of bench/RESULTS.md.

(a) in-process: validation + scoring + reasons of one application, p50/p99;
(b) HTTP POST /v1/score throughput vs a bare FastAPI endpoint, same load generator, same run;
(c) durable POST /v1/applications on SQLite (WAL, synchronous=FULL): applications/s and p99;
(d) process start (`loanrisk serve`) to /ready 200;
and POST /v1/score again with each key's rate limit shared through Redis (LOANRISK_RATE_LIMIT_URL,
the local server on 127.0.0.1:6379 or --redis-url) beside the in-process limiter, same run;
(c) again on PostgreSQL (--pg-url, a fresh schema per run), by one service process, by two
sharing the store and the Redis rate limit (the same 8 clients split between them), and by one
`serve --workers 2` (the same 8 clients on its one port).

    python bench/bench_service.py                         # trains the bundled models first
    python bench/bench_service.py --model-dir DIR [...]   # or measure given model versions
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "api"))
from _results import cpu_name, write_section  # noqa: E402
from helpers import fresh_pg_schema  # noqa: E402
from service_proc import Server, free_port, new_key, service_env  # noqa: E402

BARE = '''
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
app = FastAPI()
@app.post("/score")
async def score(request: Request):
    body = await request.json()
    return JSONResponse({"decision": "approve", "n": len(body)})
'''


def train_models(home: Path, models: tuple[str, ...]) -> list[Path]:
    """Learn on both bundled datasets (not registered); their model version dirs."""
    os.environ["LOANRISK_HOME"] = str(home)
    from loanrisk.learn.pipeline import LearnOptions, learn

    out = []
    for ds in ("lending-club-default", "lending-club-grades"):
        res = learn(LearnOptions(dataset=ds, models=models, progress=False, register=False))
        out.append(res.report_dir / "model")
    return out


def in_process(model_dir: Path, n: int = 3000, block: int = 250) -> dict[str, Any]:
    """(a) p50/p99 of validate + score + reasons for one golden application.

    The peer, side by side in blocks of ``block`` calls: the same path through onnxruntime's
    public ``run()`` (what the scorer called before it used the binding directly).
    """
    from loanrisk.config import Settings
    from loanrisk.serving import Served

    served = Served.load(model_dir, settings=Settings())
    scorer = served.scorer
    raw = scorer._run_raw
    records = scorer.manifest["golden"]["inputs"]
    times: dict[str, list[float]] = {"binding": [], "public": []}
    for start in range(0, n, block):
        for way in times:
            scorer._run_raw = raw if way == "binding" else None
            for i in range(start, min(start + block, n)):
                rec = records[i % len(records)]
                t = time.perf_counter()
                obj, errors = served.validator.validate(rec)
                assert obj is not None, errors
                scorer.score([obj.model_dump()])
                times[way].append(time.perf_counter() - t)
    scorer._run_raw = raw
    for way in times:
        times[way].sort()
    return {"model": f"{scorer.name} ({scorer.model_kind}, {len(scorer.features)} features)",
            "p50_us": times["binding"][n // 2] * 1e6,
            "p99_us": times["binding"][int(n * 0.99)] * 1e6,
            "peer_p50_us": times["public"][n // 2] * 1e6}


def _worker(args: tuple[str, str, dict[str, str], Any, float, bool]) -> tuple[int, list[float]]:
    url, body, headers, _seed, seconds, unique = args
    import uuid

    import httpx

    n, lat = 0, []
    with httpx.Client(timeout=30) as c:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            h = {**headers, "Idempotency-Key": uuid.uuid4().hex} if unique else headers
            t = time.perf_counter()
            r = c.post(url, content=body, headers={**h, "Content-Type": "application/json"})
            lat.append(time.perf_counter() - t)
            if r.status_code >= 300:
                raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
            n += 1
    return n, lat


def load(url: str, body: str, headers: dict[str, str], *, seconds: float = 5.0,
         procs: int = 2, threads: int = 4, unique: bool = False) -> dict[str, float]:
    """Closed-loop load: procs x threads clients for ``seconds``; requests/s, p50 and p99."""
    with mp.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_proc_entry, [(url, body, headers, seconds, threads, unique)] * procs)
    total = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    return {"rps": total / seconds, "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1e3, "n": total}


def load_split(urls: list[str], body: str, headers: dict[str, str], *, seconds: float,
               threads: int = 4, unique: bool = False) -> dict[str, float]:
    """``load`` with one client process per URL (``threads`` clients each), summed."""
    with mp.get_context("spawn").Pool(len(urls)) as pool:
        results = pool.map(_proc_entry, [(u, body, headers, seconds, threads, unique)
                                         for u in urls])
    total = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    return {"rps": total / seconds, "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1e3, "n": total}


def postgres_benchmarks(model_dir: Path, work: Path, seconds: float, redis_url: str,
                        pg_base: str) -> dict[str, Any]:
    """Durable POST /v1/applications on PostgreSQL: one service process, then two."""
    work.mkdir(parents=True, exist_ok=True)
    body = json.dumps(json.loads((model_dir / "manifest.json").read_text())["golden"]["inputs"][0])
    out: dict[str, Any] = {}
    with fresh_pg_schema(pg_base, prefix="bench_") as url:
        env = service_env(work / "home", LOANRISK_RATE_LIMIT_PER_MINUTE="100000000",
                          LOANRISK_RATE_LIMIT_URL=redis_url)
        auth = {"Authorization": f"Bearer {new_key(env, '--channel', 'web', '--database', url)}"}
        servers = [Server(["--model-dir", str(model_dir), "--database", url], env,
                          work / f"serve-pg{i}.log") for i in range(2)]
        servers[0].start()
        try:
            load(servers[0].url + "/v1/applications", body, auth, seconds=1.0, unique=True)
            out["pg1"] = load_split([servers[0].url + "/v1/applications"] * 2, body, auth,
                                    seconds=seconds, unique=True)
            servers[1].start()
            load(servers[1].url + "/v1/applications", body, auth, seconds=1.0, unique=True)
            out["pg2"] = load_split([s.url + "/v1/applications" for s in servers], body, auth,
                                    seconds=seconds, unique=True)
        finally:
            for s in servers:
                s.stop()
        pooled = Server(["--model-dir", str(model_dir), "--database", url, "--workers", "2"],
                        env, work / "serve-workers.log")
        pooled.start()
        try:
            load(pooled.url + "/v1/applications", body, auth, seconds=1.0, unique=True)
            out["pgw"] = load_split([pooled.url + "/v1/applications"] * 2, body, auth,
                                    seconds=seconds, unique=True)
        finally:
            pooled.stop()
    return out


def _proc_entry(args: tuple[str, str, dict[str, str], float, int, bool]
                ) -> tuple[int, list[float]]:
    from concurrent.futures import ThreadPoolExecutor

    url, body, headers, seconds, threads, unique = args
    with ThreadPoolExecutor(threads) as ex:
        parts = list(ex.map(_worker, [(url, body, headers, i, seconds, unique)
                                      for i in range(threads)]))
    return sum(p[0] for p in parts), [x for p in parts for x in p[1]]


def http_benchmarks(model_dir: Path, work: Path, seconds: float,
                    redis_url: str) -> dict[str, Any]:
    """(b), (c), (d) against `loanrisk serve --model-dir` and a bare FastAPI app; the score
    load again on a server whose rate limit lives in Redis."""
    work.mkdir(parents=True, exist_ok=True)
    env = service_env(work / "home", LOANRISK_RATE_LIMIT_PER_MINUTE="100000000",
                      LOANRISK_BODY_LIMIT_BYTES="1000000")
    key = new_key(env, "--channel", "web")
    record = json.loads((model_dir / "manifest.json").read_text())["golden"]["inputs"][0]
    body = json.dumps(record)
    auth = {"Authorization": f"Bearer {key}"}
    starts = []
    for i in range(3):
        server = Server(["--model-dir", str(model_dir)], env, work / f"start{i}.log")
        starts.append(server.start())
        server.stop()
    server = Server(["--model-dir", str(model_dir)], env, work / "serve.log")
    server.start()
    (work / "bare.py").write_text(BARE)
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], cwd=work)
    try:
        time.sleep(2.0)
        load(server.url + "/v1/score", body, auth, seconds=1.0)  # warm both
        load(f"http://127.0.0.1:{port}/score", body, {}, seconds=1.0)
        score = load(server.url + "/v1/score", body, auth, seconds=seconds)
        bare_r = load(f"http://127.0.0.1:{port}/score", body, {}, seconds=seconds)
        apps = load(server.url + "/v1/applications", body, auth, seconds=seconds, unique=True,
                    procs=2, threads=4)
    finally:
        bare.terminate()
        server.stop()
    shared = Server(["--model-dir", str(model_dir)], {**env, "LOANRISK_RATE_LIMIT_URL": redis_url},
                    work / "serve-redis.log")
    shared.start()
    try:
        load(shared.url + "/v1/score", body, auth, seconds=1.0)
        score_redis = load(shared.url + "/v1/score", body, auth, seconds=seconds)
        if "unreachable" in (work / "serve-redis.log").read_text():
            raise RuntimeError(f"{redis_url}: the service could not reach Redis (see its log)")
    finally:
        shared.stop()
    return {"score": score, "bare": bare_r, "apps": apps, "start_s": starts,
            "score_redis": score_redis}


def encryption_ab(model_dir: Path, work: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """Durable POST /v1/applications on SQLite with and without ``LOANRISK_ENCRYPTION_KEYS``:
    one store each, both servers started once, loads alternated A/B then B/A per round."""
    from loanrisk.store.crypto import new_key as new_data_key

    work.mkdir(parents=True, exist_ok=True)
    record = json.loads((model_dir / "manifest.json").read_text())["golden"]["inputs"][0]
    body = json.dumps({**record, "applicant_id": "A-0012345678", "external_ref": "REF-98765"})
    keys = f"k1:{new_data_key()},index:{new_data_key()}"
    servers: dict[str, tuple[Server, dict[str, str]]] = {}
    for mode in ("clear", "sealed"):
        env = service_env(work / mode, LOANRISK_RATE_LIMIT_PER_MINUTE="100000000")
        env.pop("LOANRISK_ENCRYPTION_KEYS", None)
        env.pop("LOANRISK_ENCRYPTION_KEY_FILE", None)
        if mode == "sealed":
            env["LOANRISK_ENCRYPTION_KEYS"] = keys
        else:
            env["LOANRISK_ENCRYPTION"] = "off"
        auth = {"Authorization": f"Bearer {new_key(env, '--channel', 'web')}"}
        server = Server(["--model-dir", str(model_dir)], env, work / f"serve-{mode}.log")
        servers[mode] = (server, auth)
    out: dict[str, list[dict[str, float]]] = {"clear": [], "sealed": []}
    for server, _ in servers.values():
        server.start()
    try:
        for server, auth in servers.values():  # warm both
            load(server.url + "/v1/applications", body, auth, seconds=1.0, unique=True)
        for i in range(rounds):
            order = ("clear", "sealed") if i % 2 == 0 else ("sealed", "clear")
            for mode in order:
                server, auth = servers[mode]
                out[mode].append(load(server.url + "/v1/applications", body, auth,
                                      seconds=seconds, unique=True))
    finally:
        for server, _ in servers.values():
            server.stop()
    return out


def encryption_section(ab: dict[str, list[dict[str, float]]], model: str,
                       seconds: float) -> str:
    """The RESULTS.md section of the encryption A/B."""
    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in ab[mode])

    rounds = len(ab["clear"])
    rows = ["## Issue 16: cost of encryption at rest on durable POST /v1/applications "
            "(`bench/bench_service.py --encryption`)", "",
            f"- Date: {date.today().isoformat()}; machine: `nproc` {os.cpu_count()}, "
            f"{cpu_name()}, shared with other jobs (load generator and servers on the same "
            f"cores); model {model}.",
            f"- One `loanrisk serve` per mode on its own SQLite store (WAL, synchronous=FULL), "
            f"both up at once; {rounds} rounds of {seconds:.0f} s each per mode, alternated "
            "(clear then sealed, then sealed then clear); 2 processes x 4 httpx clients, "
            "closed loop; every body carries applicant_id and external_ref (three values "
            "sealed, two blind-index HMACs per application).", "",
            "| mode | apps/s (median) | per round | p99 ms (median) | per round |",
            "|---|---:|---|---:|---|"]
    for mode, label in (("clear", "clear (`LOANRISK_ENCRYPTION=off`)"),
                        ("sealed", "encrypted (`LOANRISK_ENCRYPTION_KEYS`)")):
        rows.append(f"| {label} | {med(mode, 'rps'):.0f} | "
                    + ", ".join(f"{r['rps']:.0f}" for r in ab[mode])
                    + f" | {med(mode, 'p99_ms'):.1f} | "
                    + ", ".join(f"{r['p99_ms']:.1f}" for r in ab[mode]) + " |")
    slower = 1 - med("sealed", "rps") / med("clear", "rps")
    rows += ["", f"Encrypted is **{slower * 100:.1f}% {'slower' if slower >= 0 else 'faster'}"
             f"** in apps/s (median of rounds; target: at most 15% slower); p99 "
             f"{med('sealed', 'p99_ms') / med('clear', 'p99_ms'):.2f}x the clear one.", ""]
    return "\n".join(rows)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each measure's median over the runs, with its range (min-max) beside it."""
    def med(vals: list[float]) -> tuple[float, float, float]:
        return statistics.median(vals), min(vals), max(vals)

    return {
        "runs": len(runs),
        "score_rps": med([r["score"]["rps"] for r in runs]),
        "score_p50": med([r["score"]["p50_ms"] for r in runs]),
        "bare_rps": med([r["bare"]["rps"] for r in runs]),
        "ratio": med([r["score"]["rps"] / r["bare"]["rps"] for r in runs]),
        "apps_rps": med([r["apps"]["rps"] for r in runs]),
        "apps_p99": med([r["apps"]["p99_ms"] for r in runs]),
        "start": med([statistics.median(r["start_s"]) for r in runs]),
        "redis_rps": med([r["score_redis"]["rps"] for r in runs]),
        "redis_ratio": med([r["score_redis"]["rps"] / r["score"]["rps"] for r in runs]),
        "pg1_rps": med([r["pg1"]["rps"] for r in runs]),
        "pg1_p99": med([r["pg1"]["p99_ms"] for r in runs]),
        "pg2_rps": med([r["pg2"]["rps"] for r in runs]),
        "pg2_p99": med([r["pg2"]["p99_ms"] for r in runs]),
        "pgw_rps": med([r["pgw"]["rps"] for r in runs]),
        "pgw_p99": med([r["pgw"]["p99_ms"] for r in runs]),
    }


def section(rows_a: list[dict[str, Any]], runs: list[dict[str, Any]], http_model: str) -> str:
    """The markdown section for bench/RESULTS.md."""
    import onnxruntime

    cpu = cpu_name()
    m = summarise(runs)

    def rng(key: str, fmt: str) -> str:
        _, lo, hi = m[key]
        return f"{lo:{fmt}}–{hi:{fmt}}"

    lines = [
        "## Decision service (`bench/bench_service.py`, issue 3)", "",
        f"- Date: {date.today().isoformat()}; machine: `nproc` {os.cpu_count()}, {cpu}, shared "
        "with other jobs (load generator and servers on the same 2 cores).",
        f"- onnxruntime {onnxruntime.__version__}, 1 intra-op thread; uvicorn 1 worker; load "
        "generator: 2 processes x 4 threads of httpx clients, closed loop.", "",
        "(a) In-process, one application: validation + preprocessing (in the graph) + scoring + "
        "reasons (all reference variants in one onnxruntime call). Target p50 <= 200 us.", "",
        "| model | p50 (us) | p99 (us) | peer: same path via onnxruntime's public run(), p50 "
        "(us) |", "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
              f"{r['peer_p50_us']:.0f} |" for r in rows_a]
    lines += [
        "", f"(b)-(d) over HTTP, model {http_model}; median of {m['runs']} runs, range beside "
        "it (each run measures the bare endpoint too, side by side):", "",
        "| measure | median | range | target |", "|---|---:|---:|---:|",
        f"| POST /v1/score (auth, validation, reasons, metrics), req/s | "
        f"{m['score_rps'][0]:.0f} (p50 {m['score_p50'][0]:.1f} ms) | {rng('score_rps', '.0f')} "
        "| |",
        f"| bare FastAPI endpoint (parse JSON, return JSON), req/s | {m['bare_rps'][0]:.0f} | "
        f"{rng('bare_rps', '.0f')} | |",
        f"| (b) ratio score / bare | {m['ratio'][0]:.2f}x | {rng('ratio', '.2f')} | >= 0.5x |",
        f"| (c) durable POST /v1/applications (SQLite WAL + synchronous=FULL), apps/s | "
        f"{m['apps_rps'][0]:.0f} | {rng('apps_rps', '.0f')} | >= 300 |",
        f"| (c) its p99, ms | {m['apps_p99'][0]:.1f} | {rng('apps_p99', '.1f')} | <= 50 |",
        f"| (d) process start to /ready (median of 3 starts per run), s | "
        f"{m['start'][0]:.2f} | {rng('start', '.2f')} | <= 1.0 |",
        f"| POST /v1/score, rate limit shared through Redis (one Lua call a request), req/s | "
        f"{m['redis_rps'][0]:.0f} | {rng('redis_rps', '.0f')} | |",
        f"| its ratio to the in-process limiter above | {m['redis_ratio'][0]:.2f}x | "
        f"{rng('redis_ratio', '.2f')} | |",
        f"| (c) on PostgreSQL (127.0.0.1:5432), one service process, apps/s | "
        f"{m['pg1_rps'][0]:.0f} (p99 {m['pg1_p99'][0]:.1f} ms) | {rng('pg1_rps', '.0f')} | |",
        f"| (c) on PostgreSQL, two service processes (one store, rate limit in Redis), apps/s | "
        f"{m['pg2_rps'][0]:.0f} (p99 {m['pg2_p99'][0]:.1f} ms) | {rng('pg2_rps', '.0f')} | |",
        f"| (c) on PostgreSQL, one `serve --workers 2` (one port), apps/s | "
        f"{m['pgw_rps'][0]:.0f} (p99 {m['pgw_p99'][0]:.1f} ms) | {rng('pgw_rps', '.0f')} | |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run all four measurements and write the RESULTS.md section."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model-dir", type=Path, action="append", help="model version dir(s)")
    ap.add_argument("--models", default="majority,linear,mlp,gbdt,ensemble",
                    help="models to train if no dir (learn's default: every family)")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each HTTP load")
    ap.add_argument("--runs", type=int, default=3, help="repeat the HTTP measures N times")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                    help="Redis for the shared rate-limit measure")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                    help="PostgreSQL for the durable measures on PostgreSQL")
    ap.add_argument("--notes", type=Path, help="a Markdown file appended to the section")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--encryption", action="store_true",
                    help="only the A/B of durable POST /v1/applications with and without "
                         "encryption at rest (--runs rounds of --seconds per mode)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loanrisk-bench-"))
    dirs = args.model_dir or train_models(work / "train", tuple(args.models.split(",")))
    if args.encryption:
        from loanrisk.scoring.scorer import Scorer

        sc = Scorer.load(dirs[0])
        ab = encryption_ab(dirs[0], work / "enc", args.seconds, args.runs)
        text = encryption_section(ab, f"{sc.name} ({sc.model_kind})", args.seconds)
        print(text)
        if not args.no_write:
            write_section("service-encryption", text)
        return
    rows = [in_process(d) for d in dirs]
    runs = [http_benchmarks(dirs[0], work / f"run{i}", args.seconds, args.redis_url)
            | postgres_benchmarks(dirs[0], work / f"pg{i}", args.seconds, args.redis_url,
                                  args.pg_url)
            for i in range(args.runs)]
    text = section(rows, runs, rows[0]["model"])
    if args.notes:
        text += "\n" + args.notes.read_text().strip() + "\n"
    print(text)
    if not args.no_write:
        write_section("service", text)


if __name__ == "__main__":
    main()

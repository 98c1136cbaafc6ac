"""Install size and start-up of `loanrisk serve --model-dir` per install (issue 18).

    python bench/bench_install.py VENV [VENV ...] [--rounds 5]

For each virtual environment (e.g. a fresh `pip install loanrisk` and the development one with
every extra): the size of its site-packages (and without pip/setuptools, which every venv has),
and the seconds from starting `loanrisk serve --model-dir` to the first 200 from /ready, median
of the rounds, the environments taking turns so both see the same machine load. The model
directory is the tests' hand-made binary version (tests/api/model_factory.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = ("pip", "setuptools", "pkg_resources", "_distutils_hack")


def _size_mb(venv: Path) -> tuple[float, float]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    total = boot = 0
    for path in site.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            top = path.relative_to(site).parts[0]
            if top.split("-")[0] in BOOTSTRAP:
                boot += size
    return total / 1e6, (total - boot) / 1e6


def _start(venv: Path, model: Path, home: Path) -> float:
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from service_proc import free_port

    port = free_port()
    env = {**os.environ, "LOANRISK_HOME": str(home)}
    env.pop("LOANRISK_DATABASE_URL", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(venv / "bin" / "loanrisk"), "serve", "--model-dir", str(model),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{venv}: serve exited {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=0.5).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("venvs", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "api"))
    from model_factory import build_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model_dir(Path(tmp) / "v")
        times: dict[Path, list[float]] = {v: [] for v in args.venvs}
        for v in args.venvs:  # a first start each: the store's migrations, the bytecode caches
            _start(v, model, Path(tmp) / v.name)
        for _ in range(args.rounds):
            for v in args.venvs:
                times[v].append(_start(v, model, Path(tmp) / v.name))
    print("| install | site-packages MB | without pip/setuptools MB | start to /ready s "
          "(median, min-max) |")
    print("|---|---:|---:|---:|")
    for v in args.venvs:
        total, own = _size_mb(v)
        t = times[v]
        print(f"| `{v}` | {total:.0f} | {own:.0f} | {statistics.median(t):.2f} "
              f"({min(t):.2f}-{max(t):.2f}) |")


if __name__ == "__main__":
    main()

"""Every third-party module the package imports is declared in pyproject.toml, in the extra that
uses it (loanrisk.errors.EXTRA_FOR_MODULE: the extras a command without it is told to install),
nothing declared goes unused, and `serve --model-dir` runs on the core install alone (every
module an extra brings made unimportable, a real uvicorn answering /ready)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import pytest

from loanrisk.errors import EXTRA_FOR_MODULE, missing_extra

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "loanrisk"
# installed for their effect, never imported by name: uvicorn's C parser and loop, SQLAlchemy's
# PostgreSQL driver, the full MLflow (tracking server, `mlflow models serve`) for training
INDIRECT = {"httptools", "uvloop", "mlflow"}
TOOLING = {"dev", "notebook"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> dict[str, set[str]]:
    """{extra or "core": distribution names}, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    raw = {"core": project["dependencies"], **project["optional-dependencies"]}
    out: dict[str, set[str]] = {}

    def expand(extra: str) -> set[str]:
        names: set[str] = set()
        for req in raw[extra]:
            m = re.match(r"loanrisk\[([^\]]+)\]", req)
            if m:
                for sub in m.group(1).split(","):
                    names |= expand(sub.strip())
            else:
                names.add(_name(req))
        return names

    for extra in raw:
        out[extra] = expand(extra)
    return out


def _imports() -> dict[str, set[str]]:
    """{third-party top-level module: loanrisk files importing it} (function-level too)."""
    stdlib = set(sys.stdlib_module_names)
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ("loanrisk", "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(SRC)))
    return found


def _distributions(module: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in packages_distributions().get(module, [])}


def test_every_import_is_declared_in_the_extra_that_uses_it() -> None:
    declared = _declared()
    problems = []
    for module, files in sorted(_imports().items()):
        dists = _distributions(module)
        assert dists, f"{module} (imported by {sorted(files)}) is not installed here"
        extras = EXTRA_FOR_MODULE.get(module)
        where = ("core",) if extras is None else extras
        for extra in where:
            if not dists & declared[extra]:
                problems.append(f"{module} ({sorted(files)[0]}...) is not declared in "
                                f"[{extra}] (distributions: {sorted(dists)})")
        if extras is not None and dists & declared["core"]:
            problems.append(f"{module} is in the core install although EXTRA_FOR_MODULE "
                            f"names it an extra's")
        if extras is not None:
            assert missing_extra(module) and f"loanrisk[{extras[0]}]" in str(missing_extra(module))
    assert not problems, "\n".join(problems)


def test_nothing_declared_goes_unused() -> None:
    declared = _declared()
    imported: set[str] = set()
    for module in _imports():
        imported |= _distributions(module)
    runtime = set().union(*(names for extra, names in declared.items()
                            if extra not in TOOLING))
    unused = sorted(d for d in runtime if d not in imported and d not in INDIRECT
                    and d != "psycopg")
    assert not unused, f"declared but never imported: {unused}"
    assert "onnxmltools" not in runtime


BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
    sys.argv = ["loanrisk", *sys.argv[2:]]
    from loanrisk.cli import main
    main()
""")


@pytest.mark.timeout(60)
def test_core_install_serves_a_model_dir(tmp_path: Path) -> None:
    """`loanrisk serve --model-dir` with every extra's module unimportable: /ready is 200."""
    sys.path.insert(0, str(ROOT / "tests" / "api"))
    from model_factory import build_model_dir

    model = build_model_dir(tmp_path / "v")
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from service_proc import free_port, service_env

    port = free_port()
    env = service_env(tmp_path / "home")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-c", BLOCKER, ",".join(sorted(EXTRA_FOR_MODULE)),
                             "serve", "--model-dir", str(model), "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_a_missing_extra_is_named_in_one_line(tmp_path: Path) -> None:
    """`loanrisk models list` without MLflow: exit 2 and one line naming [registry]."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from service_proc import service_env

    out = subprocess.run([sys.executable, "-c", BLOCKER, "mlflow", "models", "list"],
                         env=service_env(tmp_path / "home"), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pip install 'loanrisk[registry]'" in lines[0], out.stderr

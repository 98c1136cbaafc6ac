"""The layout holds: no import cycle between any two of loanrisk's modules (package ``__init__``
re-exports included, which import-linter's sibling contract does not see), at most 15 modules
directly under src/loanrisk and none over 400 lines. The layer contracts themselves run in
`make lint` (`lint-imports`, pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[2] / "src" / "loanrisk"


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m.startswith("loanrisk"))
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m)
                       if n.startswith("loanrisk")) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on.add(node)
            children = edges.get(node, [])
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("loanrisk", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_a_small_top_level_and_small_modules() -> None:
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= 15, top
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 400}
    assert big == {}, big

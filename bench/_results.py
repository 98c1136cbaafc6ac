"""What every benchmark script shares: the CPU's name, and writing its own section of RESULTS.md.

Scripts run as ``python bench/<script>.py``, so this folder is on ``sys.path``:
``from _results import cpu_name, write_section``.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_name(*, isa: bool = False) -> str:
    """The CPU model as /proc/cpuinfo names it; with ``isa``, its widest vector unit beside it
    (torch's numerics, so the trained networks, differ between AVX-512 and AVX2 machines)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    unit = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""
    return f"{name}, {unit}" if isa and unit else name


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Put ``body`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in RESULTS.md
    (appended when the markers are missing), leaving the other sections alone."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n\n{end}"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    new = pattern.sub(lambda _m: block, old) if pattern.search(old) else \
        old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)

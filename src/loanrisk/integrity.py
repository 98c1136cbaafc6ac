"""A model version's integrity record, and the check every load path makes against it.

When ``learn`` registers a version, the SHA-256 of **every** file of the version (graph,
manifest, schema, evaluation split, training-row hashes) is written to the registry as the
version's tag ``loanrisk.files`` — a record the serving cache cannot rewrite. Every way a version
is loaded (service start, registry poll, reload, promote, rollback, challenger, batch scoring,
replay, doctor, the UI) goes through :meth:`loanrisk.registry.Registry.download`, which checks the
local copy against that record and repairs a damaged copy from the registry's own; the scorer
then checks the bytes it actually reads (graph, manifest, schema) against the same record, so
what is served is byte for byte what was registered.

Messages name files by their name inside the version, never by a filesystem path: they reach
``/ready``, which answers without a key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loanrisk.errors import ModelLoadError

FILES_TAG = "loanrisk.files"
# the files the scorer reads itself: checked on the bytes it parses, not only on disk
SERVED_FILES = ("model.onnx", "manifest.json", "schema.json")


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_files(root: Path) -> dict[str, str]:
    """{relative POSIX name: SHA-256} of every file under ``root`` (sorted, recursive)."""
    return {p.relative_to(root).as_posix(): sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class ArtifactRecord:
    """What a registered version's files must be: the graph's SHA-256 and, for versions
    registered since the record was introduced, every file's."""

    sha256: str
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ArtifactRecord:
        """The record kept in a model version's registry tags."""
        try:
            files = json.loads(tags.get(FILES_TAG) or "{}")
        except ValueError:
            files = {}
        if not isinstance(files, dict):
            files = {}
        return cls(sha256=str(tags.get("loanrisk.sha256") or ""),
                   files={str(k): str(v) for k, v in files.items()})

    def to_json(self) -> str:
        return json.dumps({"sha256": self.sha256, "files": self.files}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArtifactRecord:
        doc: dict[str, Any] = json.loads(text)
        return cls(sha256=str(doc.get("sha256") or ""), files=dict(doc.get("files") or {}))

    def check_bytes(self, name: str, data: bytes, *, label: str) -> None:
        """ModelLoadError unless ``data`` is what the record says file ``name`` holds."""
        want = self.files.get(name)
        if want is None and name == "model.onnx":
            want = self.sha256 or None
        if want is None:
            if self.files:  # a full record that does not list a file the scorer reads
                raise ModelLoadError(f"{label}: {name} is not among the version's registered "
                                     "files; refusing to serve it")
            return
        got = sha256_bytes(data)
        if got != want:
            raise ModelLoadError(f"{label}: {name} has SHA-256 {got[:12]}…, the registered "
                                 f"version's record says {want[:12]}…; refusing to serve a "
                                 "modified artifact")

    def problems(self, root: Path) -> list[str]:
        """What in the directory ``root`` differs from the record (empty when it matches)."""
        if not self.files:  # a version registered before full records: the graph only
            path = root / "model.onnx"
            if not path.is_file():
                return ["model.onnx is missing"]
            if self.sha256 and sha256_file(path) != self.sha256:
                return ["model.onnx differs from the registered SHA-256"]
            return []
        try:
            have = digest_files(root)
        except OSError as exc:
            return [f"the files cannot be read ({type(exc).__name__})"]
        out = [f"{n} is missing" for n in sorted(set(self.files) - set(have))]
        out += [f"{n} differs from the registered SHA-256" for n in sorted(self.files)
                if n in have and have[n] != self.files[n]]
        out += [f"{n} is not a registered file" for n in sorted(set(have) - set(self.files))]
        return out


_ABS_PATH = re.compile(r"(?<![\w.:])(?:[A-Za-z]:)?(?:[\\/][^\s\\/:'\"]+)+[\\/]?")


def without_paths(text: str) -> str:
    """``text`` with every absolute filesystem path cut to its last part ("…/model.onnx"):
    for messages that leave the machine (``/ready``, admin answers). URLs are kept."""
    def _short(m: re.Match[str]) -> str:
        whole = m.group(0)
        token_start = max(text.rfind(c, 0, m.start()) for c in " \t\n'\"(") + 1
        url = text[token_start:m.end()]
        if "://" in url and ":///" not in url:
            return whole  # part of a network URL (file:/// and sqlite:/// ones are paths)
        last = re.split(r"[\\/]", whole.rstrip("\\/"))[-1]
        return f"…/{last}" if last else "…"
    return _ABS_PATH.sub(_short, text)

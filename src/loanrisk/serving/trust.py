"""What the service trusts and what it says: the records of verified versions it keeps in the
store (:class:`TrustedRecords`), and messages made safe to show over HTTP (no credentials, no
filesystem paths, HTTP advice instead of command-line flags)."""

from __future__ import annotations

from typing import Protocol

from loanrisk.errors import HTTP_WORDS, reword
from loanrisk.integrity import ArtifactRecord, without_paths


def public_text(text: str) -> str:
    """A message as /ready and the admin API show it: credentials and filesystem paths cut,
    command-line advice in HTTP terms (read over HTTP, /ready without a key)."""
    from loanrisk.registry import redact

    return reword(without_paths(redact(text)), HTTP_WORDS)


def said(exc: BaseException) -> str:
    """An error as /ready and the admin API show it: type and message (see public_text)."""
    return public_text(f"{type(exc).__name__}: {exc}")


class TrustedRecords(Protocol):
    """Where the service remembers the versions it verified against the registry (the
    application store): a record the serving cache cannot rewrite."""

    def remember_served(self, name: str, version: int, record: ArtifactRecord) -> None:
        """Record that ``version`` of ``name``, with these files, is now served."""

    def recall_served(self, name: str) -> tuple[int, ArtifactRecord] | None:
        """The version of ``name`` served last, and its files' record (None if never)."""

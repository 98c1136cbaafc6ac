"""Ray addresses: a wrong one is a clear error at once (Ray itself retries for minutes)."""

from __future__ import annotations

import socket

import pytest

from loanrisk.cluster import check_reachable
from loanrisk.errors import LoanriskError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_address_is_named() -> None:
    port = _closed_port()
    with pytest.raises(LoanriskError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(LoanriskError, match="ray start --head"):
        check_reachable(f"ray://127.0.0.1:{port}", timeout=2)


def test_malformed_address_says_the_form() -> None:
    with pytest.raises(LoanriskError, match="host:port"):
        check_reachable("my-cluster")


def test_listening_address_passes() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        check_reachable(f"127.0.0.1:{srv.getsockname()[1]}", timeout=2)

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


def test_a_port_that_is_not_ray_is_named() -> None:
    """Something else listening (here a socket that never answers, and the real Redis and
    PostgreSQL every development machine runs) is refused at once, not waited on for minutes."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        with pytest.raises(LoanriskError, match="not as a Ray cluster"):
            check_reachable(f"127.0.0.1:{srv.getsockname()[1]}", timeout=1)
    for port in (6379, 5432):  # Redis answers an error, PostgreSQL closes the connection
        with pytest.raises(LoanriskError, match=f"127.0.0.1:{port} answers, but not as a Ray"):
            check_reachable(f"127.0.0.1:{port}", timeout=2)


def test_grpc_server_passes() -> None:
    """A server that answers the HTTP/2 preface with a SETTINGS frame, as Ray's GCS does."""
    import threading

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(64)
                conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        check_reachable(f"ray://127.0.0.1:{srv.getsockname()[1]}", timeout=2)
        thread.join(5)

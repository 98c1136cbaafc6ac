"""Connecting to Ray (``--backend ray``): one place, and a clear error for a wrong address."""

from __future__ import annotations

import os
import socket

from loanrisk.errors import LoanriskError

CONNECT_TIMEOUT_S = 5.0


# An HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, the Ray Client
# server) answers with its own SETTINGS frame; Redis, PostgreSQL or a web server do not.
_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_SETTINGS = 4


def check_reachable(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """LoanriskError unless a Ray cluster answers at ``address`` (host:port, ray://host:port)
    within ``timeout``: Ray itself retries a wrong address for minutes, silently, and hangs on a
    port where something else listens. A cluster is recognised by its gRPC handshake."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise LoanriskError(f"Ray address {address!r}: use host:port or ray://host:port, or "
                            "leave it out for a local Ray")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(_H2_HELLO)
            answer = conn.recv(9)
    except TimeoutError:
        answer = b""
    except OSError as exc:
        raise LoanriskError(f"cannot reach the Ray cluster at {address} ({exc}); check "
                            "--ray-address / RAY_ADDRESS, or start one with `ray start --head`"
                            ) from exc
    if len(answer) < 4 or answer[3] != _H2_SETTINGS:
        raise LoanriskError(
            f"{address} answers, but not as a Ray cluster (no gRPC handshake): give the head's "
            "address (`ray status` on the head prints it; host:6379 by default) or the Ray "
            "Client address ray://host:10001")


def start_ray(address: str | None) -> bool:
    """Connect to the cluster at ``address`` (or RAY_ADDRESS), else start a local Ray.

    True when this call initialised Ray (the caller then shuts it down). Raises LoanriskError
    when Ray is not installed or the address cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise LoanriskError("the ray backend needs Ray: pip install 'loanrisk[scale]'") from None
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local"):
        check_reachable(address)
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True)
    return True

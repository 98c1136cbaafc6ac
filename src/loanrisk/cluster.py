"""Connecting to Ray (``--backend ray``): one place, and a clear error for a wrong address."""

from __future__ import annotations

import os
import socket

from loanrisk.errors import LoanriskError

CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """LoanriskError unless a TCP connection to a Ray address (host:port, ray://host:port)
    opens within ``timeout``: Ray itself retries a wrong address for minutes, silently."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise LoanriskError(f"Ray address {address!r}: use host:port or ray://host:port, or "
                            "leave it out for a local Ray")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise LoanriskError(f"cannot reach the Ray cluster at {address} ({exc}); check "
                            "--ray-address / RAY_ADDRESS, or start one with `ray start --head`"
                            ) from exc


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

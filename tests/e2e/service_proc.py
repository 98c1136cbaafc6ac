"""Run `loanrisk serve` for real (uvicorn in a subprocess) on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LOANRISK = str(Path(sys.executable).parent / "loanrisk")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> str:
    """Run a `loanrisk` command; its stdout (CalledProcessError if it fails)."""
    out = subprocess.run([LOANRISK, *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def new_key(env: dict[str, str], *flags: str) -> str:
    """Create an API key with the CLI and return the printed token."""
    return cli("keys", "create", *flags, env=env).strip().splitlines()[-1]


class Server:
    """`loanrisk serve ...` on a free port; start, wait for /ready, SIGKILL, restart."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.args = [LOANRISK, "serve", "--port", str(self.port), *args]
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process (output to the log) without waiting for anything."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_listening(self, timeout: float = 15.0) -> None:
        """Wait until the process answers /health (whether or not a model is served)."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            try:
                httpx.get(self.url + "/health", timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError(f"not listening in {timeout}s: {self.log.read_text()[-2000:]}")

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait until /ready answers 200; the seconds that took."""
        t0 = time.perf_counter()
        self.launch()
        assert self.proc is not None
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=0.5).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"not ready in {timeout}s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL (no shutdown at all)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def service_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a service under its own loanrisk home."""
    env = {**os.environ, "LOANRISK_HOME": str(home), **extra}
    env.pop("LOANRISK_DATABASE_URL", None)
    return env

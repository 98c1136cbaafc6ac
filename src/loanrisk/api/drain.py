"""Graceful drain on SIGTERM: stop accepting, finish what was accepted, then exit.

uvicorn's own shutdown closes the listening socket at once, dropping the connections the kernel
had already accepted for it (the client sees a reset), and closes every connection that has no
request in progress, including those whose request bytes have arrived but were not read yet (a
reset) and keep-alive connections a client is sending its next request on ("server disconnected
without sending a response"). Those were the resets of issue 14 (finding 8). Here:

1. every answer from now on says ``Connection: close``;
2. the listener stops taking new handshakes at once (Linux: a socket filter drops a new
   connection's SYN, so the client retries and meets a closed port: refused, never reset);
   the connections the kernel had already queued, and handshakes already under way, are
   accepted for ``SETTLE_SECONDS``; then the listener closes with an empty queue (where a filter
   cannot be attached, it closes as soon as the queue reads empty, at most ``ACCEPT_SECONDS``);
3. a connection with a request in progress finishes it and closes; one without (just opened,
   or idle between keep-alive requests) is served if a request arrives within ``IDLE_SECONDS``
   and closed when it stays idle that long;
4. after ``grace`` seconds whatever is still running is cancelled;
5. only then does the app's lifespan shutdown run (model holder, store checkpointer...).

With ``--workers N`` the workers share one listening socket: the supervisor attaches the filter
to it (no worker takes a new connection from then on), closes its own copy, forwards SIGTERM to
each worker (each drains as above) and waits for them: ``grace`` plus a margin, then kills what
is left. Closing a listener with connections still in its queue resets them; with several
processes taking turns on one queue that was not a rare race but 8 resets in 36 clients (CI).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import select
import socket
import struct
import sys
import time
from typing import Any

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")
IDLE_SECONDS = 2.0  # a connection with no request for this long while draining is closed
ACCEPT_SECONDS = 1.0  # at most this long to accept what the kernel queued before closing
SETTLE_SECONDS = 0.25  # with new SYNs dropped: handshakes already under way complete (an RTT)
KILL_MARGIN = 5.0  # the supervisor waits grace + this for its workers, then kills them


# Classic BPF: load the TCP flags byte; a segment with SYN set and ACK clear (a new connection)
# is dropped, every other one kept. Attached to a listener (and inherited by the connections it
# accepts from then on, whose segments all carry ACK).
_SO_ATTACH_FILTER = 26
_REFUSE_NEW = ((0x30, 0, 0, 13),  # ldb [13]
               (0x45, 2, 0, 0x10),  # jset #ACK -> keep
               (0x45, 0, 1, 0x02),  # jset #SYN -> drop, else keep
               (0x06, 0, 0, 0),  # ret 0: drop
               (0x06, 0, 0, 0xFFFFFFFF))  # ret all: keep


def refuse_new_connections(sock: Any) -> bool:
    """Stop a listening TCP socket taking new handshakes while what it queued is still accepted
    (Linux; ``False`` where the filter cannot be attached, e.g. another OS or a Unix socket)."""
    if not sys.platform.startswith("linux"):
        return False
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in _REFUSE_NEW))
    program = struct.pack("HL", len(_REFUSE_NEW), ctypes.addressof(code))
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)  # the kernel copies it
    except (OSError, AttributeError, TypeError, ValueError):
        return False
    return True


def _queued(server: Any) -> int:
    """Connections the kernel has queued on a listening TCP socket and nobody accepted yet
    (Linux: ``tcpi_unacked`` of TCP_INFO on a listener is its accept-queue length; 0 where this
    cannot be read)."""
    total = 0
    for sock in getattr(server, "sockets", ()) or ():
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", 11), 104)
            total += struct.unpack_from("I", info, 24)[0]
        except (OSError, struct.error, TypeError):
            pass
    return total


def _pending(conn: object) -> bool:
    """Whether bytes wait unread on a connection's socket (a request the client has just sent
    on an idle keep-alive connection): such a connection is not idle, it is about to be busy."""
    transport: Any = getattr(conn, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


def _busy(conn: object) -> bool:
    """Whether a uvicorn HTTP connection has a request in progress; if so, it is told to close
    once it has answered."""
    cycle: Any = getattr(conn, "cycle", None)
    if cycle is None or cycle.response_complete:
        return False
    cycle.keep_alive = False
    return True


class DrainingServer(Server):
    """uvicorn's Server with the drain described in this module's docstring."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        grace = self.config.timeout_graceful_shutdown
        deadline = loop.time() + (grace if grace is not None else float("inf"))
        state = self.server_state
        log.info("Shutting down: draining %d connection(s), grace %s s",
                 len(state.connections), grace)
        state.default_headers = [*state.default_headers, (b"connection", b"close")]
        listeners = [sock for server in self.servers for sock in server.sockets]
        filtered = bool(listeners) and all([refuse_new_connections(s) for s in listeners])
        # let the loop accept what the kernel has queued for the listener (a connection left in
        # the accept queue when the listener closes is reset), then close it in the same turn
        start = loop.time()
        settle = start + (SETTLE_SECONDS if filtered else 0.0)
        for turn in range(1_000_000):
            now = loop.time()
            if turn >= 3 and now >= settle and (
                    not any(_queued(server) for server in self.servers)
                    or now > start + ACCEPT_SECONDS):
                break
            await asyncio.sleep(0 if now >= settle else 0.005)
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        idle_since: dict[Any, float] = {}
        while (state.connections or state.tasks) and not self.force_exit \
                and loop.time() < deadline:
            now = loop.time()
            for conn in list(state.connections):
                if _busy(conn) or _pending(conn):  # it answers (or will), then closes
                    idle_since.pop(conn, None)
                elif now - idle_since.setdefault(conn, now) >= IDLE_SECONDS:
                    conn.shutdown()  # idle: closed (uvicorn's shutdown of an idle connection)
            await asyncio.sleep(0.02)
        if state.tasks and not self.force_exit:
            log.error("Cancel %d running task(s): grace period of %s s exceeded",
                      len(state.tasks), grace)
            for task in state.tasks:
                task.cancel(msg="grace period exceeded")
        for conn in list(state.connections):
            conn.shutdown()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


class _Worker(Process):
    """A uvicorn worker process that runs a :class:`DrainingServer`."""

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, draining: on SIGTERM (or SIGINT) it closes its own copy of
    the listening socket, forwards SIGTERM to every worker (each drains) and waits up to the
    grace period plus ``KILL_MARGIN`` before killing what is left. Dead workers are replaced
    as uvicorn does; resizing (SIGTTIN/SIGTTOU) and SIGHUP restarts are not offered."""

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._spawn())

    def _spawn(self) -> Process:
        process = _Worker(self.config, self.sockets)
        process.start()
        return process

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung or dead
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                log.error("Child process [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            log.warning("Child process [%s] died; starting another", process.pid)
            self.processes[idx] = self._spawn()

    def restart_all(self) -> None:
        log.warning("SIGHUP ignored: restart the service (SIGTERM drains it)")

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignored: the worker count is --workers")

    def handle_ttou(self) -> None:
        log.warning("SIGTTOU ignored: the worker count is --workers")

    def run(self) -> None:
        log.info("Started parent process")
        self.init_processes()
        while not self.should_exit.wait(0.1):
            self.handle_signals()
            self.keep_subprocess_alive()
        for sock in self.sockets:  # the workers hold their own copies until they have drained
            refuse_new_connections(sock)  # one kernel socket: no worker takes a new connection
            sock.close()
        self.terminate_all()  # SIGTERM: each worker drains
        grace = self.config.timeout_graceful_shutdown or 0.0
        deadline = time.monotonic() + grace + KILL_MARGIN
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.process.is_alive():
                log.error("Child process [%s] still running after the grace period: killed",
                          process.pid)
                process.kill()
                process.process.join()
        log.info("Stopped parent process")


def run_server(config: Config) -> None:
    """Serve ``config`` in this process (one worker) or with ``config.workers`` processes,
    draining on SIGTERM; exits with uvicorn's start-up failure code when it cannot start."""
    import sys

    if config.workers > 1:
        sock = config.bind_socket()
        Supervisor(config, sockets=[sock]).run()
        return
    server = DrainingServer(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)

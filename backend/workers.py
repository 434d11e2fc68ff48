"""`todo-api serve --workers N`: uvicorn's own supervisor, with a listening socket per worker.

uvicorn's `Multiprocess` starts the workers, health-checks them, replaces one that dies, stops
when one fails to start, and turns SIGTERM/SIGINT into a graceful shutdown of every worker. It
hands each worker the sockets it was given, and a socket reaches a spawned worker by pickling.

What we change is only which socket a worker listens on. uvicorn's shared socket lets whichever
worker wakes first accept every pending connection, so a client that holds a few keep-alive
connections (a load balancer, a front-end server, a benchmark) often lands on one worker while
the others idle. `ReusePortSocket` pickles as "bind a new SO_REUSEPORT socket to this address",
so each worker opens its own listener and the kernel spreads new connections over the workers
by a hash of the client address. docs/adr/0002-worker-supervision.md has the measurement.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("todo_api")


class ReusePortSocket(socket.socket):
    """A SO_REUSEPORT TCP socket that arrives in another process as a new one on its address."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return reuse_port_socket, (host, port)


def reuse_port_socket(host: str, port: int) -> ReusePortSocket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening.

    Made with IPPROTO_TCP (not protocol 0): asyncio sets TCP_NODELAY on accepted connections only
    when the listening socket says it is TCP.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = ReusePortSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Supervisor(Multiprocess):
    """uvicorn's supervisor, its workers listening on sockets of their own."""

    def __init__(self, config: uvicorn.Config, listener: ReusePortSocket) -> None:
        # The parent's socket is bound, never listening: it holds the port for the
        # supervisor's lifetime, so nothing else can take it between worker restarts.
        super().__init__(config, sockets=[listener])

    def failed_to_start(self) -> bool:
        """True when `run` stopped because a worker exited before it could serve."""
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)


def serve_workers(config: uvicorn.Config) -> int:
    """Run `config.workers` workers on (config.host, config.port); the process's exit status."""
    try:
        listener = reuse_port_socket(config.host, config.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        return 1
    with listener:
        logger.info(
            "serving on http://%s:%d with %d workers", config.host, config.port, config.workers
        )
        supervisor = Supervisor(config, listener)
        supervisor.run()  # until SIGTERM/SIGINT, or until a worker fails to start
        return 1 if supervisor.failed_to_start() else 0

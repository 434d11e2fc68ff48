"""`todo-api serve --workers N`: N uvicorn processes, each listening on its own SO_REUSEPORT socket.

uvicorn's own `--workers` shares one listening socket between processes, and whichever worker
wakes first accepts every pending connection. Clients that hold a few keep-alive connections (a
load balancer, a front-end server, a benchmark) then often land on one worker while the others
idle: measured here, 8 connections to 2 workers gave one worker 4 s of CPU and the other none.
With a listening socket per worker and SO_REUSEPORT, the kernel spreads new connections over
the workers by a hash of the client address.

The supervisor is deliberately small: it starts the workers, restarts one that dies after it
was serving, stops everything (exit 1) if one dies before it ever served, and forwards SIGTERM
and SIGINT so each worker drains its in-flight requests before the supervisor exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger("todo_api")
POLL_SECONDS = 0.2
# A worker that dies this soon after its previous restart is restarted only after a pause,
# so a crash loop (e.g. the database refusing connections at start-up) does not spin.
RESTART_BACKOFF_SECONDS = 1.0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _WorkerServer(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it is serving."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._ready.set()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn restores this handler and re-raises SIGTERM once it has drained; exit 0 then.
    raise SystemExit(0)


def _run_worker(config_kwargs: dict[str, Any], host: str, port: int, ready: Event) -> None:
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)  # Ctrl+C reaches the whole process group
    sock = reuse_port_socket(host, port)
    config = uvicorn.Config(**config_kwargs, host=host, port=port)
    _WorkerServer(config, ready).run(sockets=[sock])


@dataclass
class _Worker:
    process: SpawnProcess
    ready: Event
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Runs `workers` copies of the app on (host, port) until SIGTERM or SIGINT."""

    def __init__(
        self, config_kwargs: dict[str, Any], *, host: str, port: int, workers: int
    ) -> None:
        self._config_kwargs = config_kwargs
        self._host = host
        self._port = port
        self._count = workers
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._stopping = False

    def _spawn(self) -> _Worker:
        ready = self._context.Event()
        process = self._context.Process(
            target=_run_worker,
            args=(self._config_kwargs, self._host, self._port, ready),
            name="todo-api-worker",
        )
        process.start()
        return _Worker(process, ready)

    def _request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        # Held (bound, never listening) for the supervisor's lifetime: the port cannot be taken
        # between worker restarts, and a port already in use fails here, before any worker.
        try:
            holder = reuse_port_socket(self._host, self._port)
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", self._host, self._port, exc.strerror)
            return 1
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        try:
            self._workers = [self._spawn() for _ in range(self._count)]
            logger.info(
                "serving on http://%s:%d with %d workers", self._host, self._port, self._count
            )
            status = self._watch()
            clean = self._stop_all()
            return status if clean else 1
        finally:
            holder.close()

    def _watch(self) -> int:
        while not self._stopping:
            for index, worker in enumerate(self._workers):
                if worker.process.is_alive():
                    continue
                if not worker.ready.is_set():
                    logger.error(
                        "worker %s exited with %s before serving; stopping",
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                    return 1
                logger.warning(
                    "worker %s exited with %s; restarting it",
                    worker.process.pid,
                    worker.process.exitcode,
                )
                if time.monotonic() - worker.started_at < RESTART_BACKOFF_SECONDS:
                    time.sleep(RESTART_BACKOFF_SECONDS)
                self._workers[index] = self._spawn()
            time.sleep(POLL_SECONDS)
        return 0

    def _stop_all(self) -> bool:
        """SIGTERM every worker, wait for them to drain; True if all exited 0."""
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: the worker drains, then exits 0
        grace = float(self._config_kwargs.get("timeout_graceful_shutdown") or 0) + 5.0
        deadline = time.monotonic() + grace
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.error(
                    "worker %s did not stop in %.0f s; killing it", worker.process.pid, grace
                )
                worker.process.kill()
                worker.process.join()
        return all(worker.process.exitcode == 0 for worker in self._workers)

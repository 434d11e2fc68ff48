"""`todo-api serve` in a subprocess on a loopback port: for tests and tools that need real HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tools.bench import free_port, listeners

__all__ = [
    "LiveServer",
    "ServerFailed",
    "free_port",
    "running_server",
    "start_server",
    "stop_server",
]


class ServerFailed(RuntimeError):
    """The server exited or never became healthy; the message carries its log."""


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def executable(name: str) -> str:
    """The console script installed next to this interpreter (the venv's), else from PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def start_server(
    env: Mapping[str, str],
    workdir: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    log_path: Path | None = None,
    inherit_environ: bool = True,
    timeout: float = 30.0,
) -> LiveServer:
    """Start the server and wait until /api/health answers (and every worker listens).

    `env` overlays this process's environment unless `inherit_environ` is False, in which case
    it is the server's whole environment (a caller that removed variables keeps them removed).
    """
    port = port or free_port()
    log_path = log_path or workdir / f"server-{port}.log"
    full_env = {**os.environ, **env} if inherit_environ else dict(env)
    command = [executable("todo-api"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=workdir,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            healthy = httpx.get(f"{server.base_url}/api/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            healthy = False
        # With several workers, health answers once the first listens: wait for all of them.
        if healthy and (workers == 1 or listeners(port) >= workers):
            return server
        time.sleep(0.1)
    stop_server(server)
    raise ServerFailed(f"server did not become healthy:\n{server.log()}")


def stop_server(server: LiveServer, timeout: float = 20.0) -> int:
    """SIGTERM (a graceful shutdown), SIGKILL after `timeout`; the exit status."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextmanager
def running_server(
    env: Mapping[str, str],
    workdir: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    log_path: Path | None = None,
    inherit_environ: bool = True,
    timeout: float = 30.0,
) -> Iterator[LiveServer]:
    """`start_server` for the length of a block, stopped however the block ends."""
    server = start_server(
        env,
        workdir,
        workers=workers,
        port=port,
        log_path=log_path,
        inherit_environ=inherit_environ,
        timeout=timeout,
    )
    try:
        yield server
    finally:
        stop_server(server)

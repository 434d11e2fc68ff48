"""Shared test helpers: real tokens, real databases, a real server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from backend.auth import mint_token
from backend.settings import Settings
from tools.bench import listeners

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"test-secret-for-todo-api-0123456789abcdef"
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: TEST_DATABASE_URL is not set "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test; .ci/run sets it)"
)


def token_for(user_id: str, *, ttl_seconds: int = 3600, secret: bytes = SECRET) -> str:
    return mint_token(secret, user_id, ttl_seconds=ttl_seconds)


@dataclass(frozen=True)
class User:
    """A signed-in user: their id and the Authorization header of a real HS256 token."""

    id: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def named(cls, user_id: str) -> User:
        token = token_for(user_id)
        return cls(id=user_id, token=token, headers={"Authorization": f"Bearer {token}"})

    @property
    def tasks(self) -> str:
        return f"/api/{self.id}/tasks"

    def task(self, task_id: int | str) -> str:
        return f"/api/{self.id}/tasks/{task_id}"


def api_settings(database_url: str) -> Settings:
    """Settings of an API under test: the given database, the test secret, quiet logs."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        todo_env="test",
        database_url=database_url,
        better_auth_secret=SECRET.decode(),
        log_level="WARNING",
    )


def postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def reset_postgres_schema(url: str) -> None:
    """Empty the test database: drop and recreate the public schema."""
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")


def truncate_postgres(url: str) -> None:
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("TRUNCATE tasks, idempotency_keys RESTART IDENTITY")


def _libpq(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    env: dict[str, str], workdir: Path, *, workers: int = 1, timeout: float = 30.0
) -> LiveServer:
    """`todo-api serve` in a subprocess on a free loopback port, waited on until healthy."""
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    executable = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
    full_env = {**os.environ, **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                executable,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=workdir,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            healthy = httpx.get(f"{server.base_url}/api/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            healthy = False
        # With several workers, health answers once the first listens: wait for all of them.
        if healthy and (workers == 1 or listeners(port) >= workers):
            return server
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


def stop_server(server: LiveServer, timeout: float = 20.0) -> int:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


def iter_lines(text: str) -> Iterator[str]:
    yield from (line for line in text.splitlines() if line.strip())

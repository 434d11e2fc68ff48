"""Helpers for the write-path tests: a real server on a given database, and SQL probes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from tests.support import SECRET, LiveServer, start_server, stop_server

PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://todo-api.dev/problems/"


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a `todo-api serve` under test: explicit, so the shell cannot leak in."""
    env = {
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET.decode(),
        "BETTER_AUTH_URL": "",
        "JWT_JWKS_URL": "",
        "TODO_ENV": "test",
        "LOG_LEVEL": "INFO",
        "DB_POOL_SIZE": "10",
        "DB_MAX_OVERFLOW": "10",
        "DB_POOL_TIMEOUT_SECONDS": "5",
        "DB_CONNECT_TIMEOUT_SECONDS": "5",
        "DB_STATEMENT_TIMEOUT_MS": "10000",
    }
    env.update(overrides)
    return env


@contextmanager
def running_server(env: dict[str, str], workdir: Path, **options: Any) -> Iterator[LiveServer]:
    server = start_server(env, workdir, **options)
    try:
        yield server
    finally:
        stop_server(server)


def libpq(url: str) -> str:
    """A SQLAlchemy-style URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_scalar(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        row = connection.execute(sql, params).fetchone()  # type: ignore[call-overload]
        return None if row is None else row[0]


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """`response` is the contract's Problem document with this status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == PROBLEMS + slug, body
    assert body["request_id"] == response.headers["x-request-id"]
    return body

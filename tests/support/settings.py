"""Settings builders: an app in-process, and the environment of a `todo-api serve` under test."""

from __future__ import annotations

from typing import Any

from backend.settings import Settings
from tests.support.identity import SECRET


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings on `database_url`; HS secret unless overridden (pass None to drop it)."""
    values: dict[str, Any] = {
        "todo_env": "test",
        "database_url": database_url,
        "better_auth_secret": SECRET.decode(),
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def api_settings(database_url: str) -> Settings:
    """Settings of an API under test: the given database, the test secret, quiet logs."""
    return make_settings(database_url)


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

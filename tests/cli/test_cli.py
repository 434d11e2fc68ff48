"""The `todo-api` command: zero-configuration serve, dev tokens, production refusal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest
from uvicorn.config import STARTUP_FAILURE

from tests.support import start_server, stop_server

TODO_API = shutil.which("todo-api", path=str(Path(sys.executable).parent)) or "todo-api"
AUTH_VARIABLES = (
    "BETTER_AUTH_SECRET",
    "BETTER_AUTH_URL",
    "JWT_JWKS_URL",
    "DATABASE_URL",
    "TODO_ENV",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in AUTH_VARIABLES}
    return {**env, **extra}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TODO_API, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_without_configuration_uses_sqlite_and_a_dev_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh checkout: no env at all -> SQLite file migrated, dev secret, loud notice."""
    for key in AUTH_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    server = start_server({}, tmp_path)
    try:
        assert (tmp_path / "todo.db").exists()
        secret_file = tmp_path / "todo.db.secret"
        assert secret_file.exists() and (secret_file.stat().st_mode & 0o777) == 0o600
        log = server.log()
        assert "todo-api token USER_ID" in log and "todo.db.secret" in log
        minted = run(["token", "carol"], tmp_path, clean_env())
        assert minted.returncode == 0, minted.stderr
        created = httpx.post(
            f"{server.base_url}/api/carol/tasks",
            json={"title": "first task"},
            headers={"Authorization": f"Bearer {minted.stdout.strip()}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
    finally:
        # uvicorn re-raises SIGTERM after its graceful shutdown, so -SIGTERM is a clean exit.
        assert stop_server(server) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log()


def test_token_is_signed_with_the_configured_secret(tmp_path: Path) -> None:
    secret = "cli-test-secret-0123456789abcdefghijklmnop"
    result = run(["token", "dave", "--ttl", "120"], tmp_path, clean_env(BETTER_AUTH_SECRET=secret))
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "dave" and claims["exp"] - claims["iat"] == 120


def test_token_rejects_a_user_id_the_api_would_refuse(tmp_path: Path) -> None:
    result = run(["token", "bad id"], tmp_path, clean_env(BETTER_AUTH_SECRET="x" * 40))
    assert result.returncode != 0 and "cannot mint a token" in result.stderr


def test_production_without_auth_refuses_to_start(tmp_path: Path) -> None:
    result = run(["serve", "--port", "1"], tmp_path, clean_env(TODO_ENV="production"))
    assert result.returncode != 0
    assert "no authentication configured" in result.stdout + result.stderr
    assert not (tmp_path / "todo.db.secret").exists()


def test_migrate_upgrades_a_fresh_database(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    result = run(["migrate"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh.db").exists()


def test_a_worker_whose_app_cannot_be_built_exits_with_uvicorns_startup_failure(
    tmp_path: Path,
) -> None:
    """Any other status makes uvicorn's supervisor start the worker again, forever."""
    code = (
        "import backend.app\n"
        "def broken(settings):\n"
        "    raise RuntimeError('the contract is not fully implemented')\n"
        "backend.app.create_app = broken\n"
        "from backend.cli import served_app\n"
        "served_app()\n"
    )
    env = clean_env(BETTER_AUTH_SECRET="x" * 40, DATABASE_URL=f"sqlite:///{tmp_path / 't.db'}")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == STARTUP_FAILURE
    (line,) = done.stderr.splitlines()
    entry = json.loads(line)
    assert entry["message"] == "the app cannot be built"
    assert "the contract is not fully implemented" in entry["exception"]

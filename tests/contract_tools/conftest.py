"""Fixtures for the contract-tool tests: the Node tools, Chromium and one live server.

The Node tools are installed by the project's own lock (`npm ci --prefix tools`) the first time
a test needs them; without Node.js/npm or Chromium the tests that need them are skipped with a
message that says which is missing, never passed silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import SECRET, LiveServer, load_contract, start_server, stop_server
from tools import node_env

CHROMIUM_HINT = "apt-get update && apt-get install -y chromium"


@pytest.fixture(scope="session")
def node_tools() -> None:
    """tools/node_modules installed from the lock (npm ci on first use); skip without Node."""
    if node_env.node() is None or node_env.npm() is None:
        pytest.skip(
            "SKIPPED: Node.js/npm not found on PATH; the contract lint, breaking-change gate, "
            "TypeScript and browser tests need Node.js 20 and npm"
        )
    try:
        node_env.ensure_installed()
    except node_env.NodeToolsMissing as exc:
        pytest.fail(f"`{node_env.INSTALL_HINT}` did not install the contract tools: {exc}")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; skip, saying how to install it, when it is missing."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        pytest.skip(f"SKIPPED: Chromium not found (/usr/bin/chromium); install it: {CHROMIUM_HINT}")
    return path


@pytest.fixture(scope="session")
def contract() -> dict[str, Any]:
    return load_contract()


@pytest.fixture(scope="session")
def operations(contract: dict[str, Any]) -> list[dict[str, str]]:
    """Every operation of the contract: operationId, summary, first tag, method and path."""
    return [
        {
            "operationId": operation["operationId"],
            "summary": operation["summary"],
            "tag": operation["tags"][0],
            "method": method.upper(),
            "path": path,
        }
        for path, item in contract["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    ]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`todo-api serve` on a loopback port with a fresh SQLite file and the test secret."""
    workdir = tmp_path_factory.mktemp("contract-tools-server")
    env = {
        "TODO_ENV": "test",
        "DATABASE_URL": f"sqlite:///{workdir / 'todo.db'}",
        "BETTER_AUTH_SECRET": SECRET.decode(),
        "BETTER_AUTH_URL": "",
        "JWT_JWKS_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    server = start_server(env, workdir)
    try:
        yield server
    finally:
        assert stop_server(server) == 0, server.log()

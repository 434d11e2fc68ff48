"""Fixtures for the front-end tests: the Node tools, the built client package, Chromium.

Without Node.js/npm (or, for the browser test, Chromium) the tests that need them are skipped
with a message naming what is missing; a failing install or build fails them.
"""

from __future__ import annotations

import pytest

from tools import e2e, node_env


@pytest.fixture(scope="session")
def frontend_tools() -> None:
    """tools/node_modules installed from the lock and the client package built (strict tsc)."""
    if node_env.node() is None or node_env.npm() is None:
        pytest.skip(
            "SKIPPED: Node.js/npm not found on PATH; the client package, mock and browser "
            "tests need Node.js 20 and npm"
        )
    try:
        node_env.ensure_installed()
    except node_env.NodeToolsMissing as exc:
        pytest.fail(f"`{node_env.INSTALL_HINT}` did not install the Node tools: {exc}")
    e2e.build_client()

"""Running the Node contract tools and the headless browser from tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tools import node_env

HERE = Path(__file__).resolve().parent


def run_node(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    """Run `node ARGS`; return its stdout (one JSON document), failing the test on an error."""
    result = subprocess.run(
        [node_env.node() or "node", *args],
        env=node_env.quiet_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"node {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return json.loads(result.stdout)


def browser_visits(url: str, visits: list[dict[str, Any]], chromium_path: str) -> Any:
    """Open `url` in headless Chromium, visit each route; requests, text and HTML per visit."""
    return run_node(
        str(HERE / "browser_check.mjs"),
        url,
        json.dumps(visits),
        env={"CHROMIUM_PATH": chromium_path},
    )

"""`python -m tools.mock`: Prism on the contract, as a front-end developer starts it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.frontend.contract_check import problems
from tests.support import free_port
from tools import node_env

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("frontend_tools")]


def exchange(method: str, response: httpx.Response) -> dict[str, object]:
    return {
        "method": method,
        "url": str(response.url),
        "status": response.status_code,
        "contentType": response.headers.get("content-type"),
        "body": response.text,
    }


def test_the_cli_says_where_it_listens_and_answers_from_the_contract() -> None:
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "tools.mock", "--port", str(port), "--dynamic"],
        cwd=node_env.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            _check_the_running_mock(process, port)
        finally:
            process.terminate()
            process.wait(timeout=15)
    # Stopping tools.mock stops Prism too: the port is free again.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def _check_the_running_mock(process: subprocess.Popen[str], port: int) -> None:
    """Reads the listening line, then calls the mock as a front end would."""
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    line = ""
    while time.monotonic() < deadline and "listening on" not in line:
        line = process.stdout.readline()
        assert line or process.poll() is None, "tools.mock exited before it listened"
    assert f"listening on http://127.0.0.1:{port}" in line, line
    base = f"http://127.0.0.1:{port}/api/user_2f9a/tasks"
    auth = {"Authorization": "Bearer any"}

    listed = httpx.get(base, headers=auth, timeout=10)
    assert listed.status_code == 200
    assert problems(exchange("GET", listed)) == []
    assert int(listed.headers["X-Total-Count"]) >= 0  # headers the front end reads are there
    # Requests are validated against the contract: no title is the contract's 422 problem.
    invalid = httpx.post(base, headers=auth, json={"priority": "urgent"}, timeout=10)
    assert invalid.status_code == 422
    assert invalid.headers["content-type"].startswith("application/problem+json")
    assert problems(exchange("POST", invalid)) == []
    # No bearer token: 401, as the real server answers.
    anonymous = httpx.get(base, timeout=10)
    assert anonymous.status_code == 401
    # A browser on any origin may call the mock.
    preflight = httpx.options(
        base,
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
        timeout=10,
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers.get("access-control-allow-origin") in ("*", "http://localhost:3000")

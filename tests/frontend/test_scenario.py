"""The front end's client scenario (scenario.ts) on the Prism mock and on the real server.

The same compiled script, through the client package, against both: every response it got must
keep the contract (declared status, media type, body schema); against the real server the
answers must also say what happened (one task per idempotent create, pages, 412, 422, 404).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.frontend.contract_check import problems
from tests.support import SECRET, free_port, start_server, stop_server, token_for
from tools import e2e, mock, node_env

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("frontend_tools")]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenario") / "scenario.mjs"
    e2e.esbuild(HERE / "scenario.ts", out, platform="node")
    return out


def run_scenario(script: Path, base_url: str, token: str, user: str, mode: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(node_env.node()), str(script)],
        env=node_env.quiet_env(
            {
                "TODO_API_URL": base_url,
                "TODO_API_TOKEN": token,
                "TODO_API_USER": user,
                "TODO_MODE": mode,
            }
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_all_keep_the_contract(report: dict[str, Any]) -> None:
    found = [problem for exchange in report["exchanges"] for problem in problems(exchange)]
    assert found == []
    statuses = {exchange["status"] for exchange in report["exchanges"]}
    # The error paths were really taken, not skipped.
    assert {200, 201, 204, 401, 404, 412, 422} <= statuses


@pytest.fixture
def mock_server(tmp_path: Path) -> Iterator[str]:
    with mock.running(free_port(), log=tmp_path / "prism.log") as server:
        yield server.url


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[str]:
    env = {
        "TODO_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'todo.db'}",
        "BETTER_AUTH_SECRET": SECRET.decode(),
        "BETTER_AUTH_URL": "",
        "JWT_JWKS_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    server = start_server(env, tmp_path)
    try:
        yield server.base_url
    finally:
        assert stop_server(server) == 0, server.log()


def test_the_scenario_on_the_mock_gets_only_contract_answers(
    scenario: Path, mock_server: str
) -> None:
    report = run_scenario(scenario, mock_server, "any-token", "user_2f9a", "mock")
    assert_all_keep_the_contract(report)
    steps = report["steps"]
    assert steps["renewed"]["refreshes"][-1] is True  # 401 -> a fresh token -> retried
    assert steps["conflict"]["type"].endswith("/precondition-failed")
    assert steps["invalid"]["title"]  # the 422's field message, keyed by field
    assert steps["page1"]["next"] is not None and steps["page1"]["total"] >= 1


def test_the_scenario_on_the_real_server(scenario: Path, real_server: str) -> None:
    user = "scenario-user"
    report = run_scenario(scenario, real_server, token_for(user), user, "real")
    assert_all_keep_the_contract(report)
    steps = report["steps"]
    assert steps["renewed"] == {"tokenCalls": 3, "refreshes": [False, False, True]}
    assert steps["created"]["location"] == f"/api/{user}/tasks/{steps['created']['id']}"
    # The create whose answer was lost was sent twice with one Idempotency-Key: one task.
    retried = steps["retriedCreate"]
    assert retried["status"] == 201 and retried["posts"] == 2
    assert steps["page1"]["total"] == 3
    assert steps["page1"]["titles"] == ["Buy milk", "Call the bank"]
    assert steps["page1"]["next"]["skip"] == 2 and steps["page1"]["next"]["limit"] == 2
    assert steps["page2"]["titles"] == ["Write the report"]
    assert steps["page2"]["prev"]["skip"] == 0
    assert steps["edited"]["title"] == "Buy oat milk"
    assert steps["conflict"]["type"].endswith("/precondition-failed")
    assert steps["invalid"]["type"].endswith("/validation-error") and steps["invalid"]["title"]
    assert steps["completed"] == {"completed": True, "priority": "low"}
    assert steps["deleteStatus"] == 204
    assert steps["gone"]["type"].endswith("/not-found")
    assert steps["remaining"]["total"] == 2
    assert retried["id"] in steps["remaining"]["ids"]

"""The suites that cover every operation take them from the contract, not from a hand-kept list.

An operation added to a copy of the contract shows up in the helper and in the parametrization
of every such suite, with no list edited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, load_contract, operations, user_operations
from tests.support.contract import CONTRACT_ENV

NEW = "listTags"
# Suites whose tests are parametrized per operation (collected against the copy).
PARAMETRIZED = [
    "tests/security/test_isolation.py",
    "tests/writes/test_contract_declarations.py",
]
# Suites that loop over the helper's operations inside one test.
LOOPING = [
    "tests/api/test_task_bad_input.py",
    "tests/db/test_round_trips.py",
    "tests/security/helpers.py",
]


def _with_new_operation(path: Path) -> Path:
    """A copy of the contract with `GET /api/{user_id}/tags` (listTags) added."""
    document: dict[str, Any] = load_contract()
    collection = document["paths"]["/api/{user_id}/tasks"]
    list_tasks = collection["get"]
    document["paths"]["/api/{user_id}/tags"] = {
        "parameters": collection["parameters"],
        "get": {
            **list_tasks,
            "operationId": NEW,
            "summary": "List the user's tags",
            "parameters": [],
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _with_new_operation(tmp_path_factory.mktemp("contract") / "openapi.yaml")


def test_the_helper_returns_an_operation_added_to_the_contract(copy: Path) -> None:
    assert NEW not in operations()
    added = user_operations(copy)[NEW]
    assert (added.method, added.path, added.success) == ("GET", "/api/{user_id}/tags", 200)
    assert added.secured and added.user_scoped and not added.on_task
    assert added.url(user_id="alice") == "/api/alice/tags"
    assert set(operations(copy)) == {*operations(), NEW}


def test_example_requests_come_from_the_contract() -> None:
    ops = user_operations()
    assert ops["createTask"].body == {"title": "Buy milk"}
    assert ops["getTask"].url() == f"/api/{ops['getTask'].example('path', 'user_id')}/tasks/42"
    assert ops["deleteTask"].body is None and ops["deleteTask"].success == 204
    assert not operations()["getHealth"].secured


@pytest.mark.slow
def test_the_suites_parametrize_over_the_copy(copy: Path) -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *PARAMETRIZED],
        cwd=ROOT,
        env={**os.environ, CONTRACT_ENV: str(copy)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stdout + collected.stderr
    for suite in PARAMETRIZED:
        ids = [line for line in collected.stdout.splitlines() if line.startswith(suite)]
        assert any(NEW in line for line in ids), f"{suite} does not cover {NEW}"


@pytest.mark.parametrize("suite", LOOPING)
def test_looping_suites_take_their_operations_from_the_helper(suite: str) -> None:
    assert "user_operations()" in (ROOT / suite).read_text(encoding="utf-8")

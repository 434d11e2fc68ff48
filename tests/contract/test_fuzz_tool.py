"""`python -m tools.fuzz` end to end, on its smallest budget: real server, real HTTP, JUnit out.

The thorough run is the tool itself; this only proves its plumbing (server start on SQLite,
minted token, pinned user, hooks, report, exit status) still works.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from contextlib import closing
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, operations
from tools import fuzz

pytestmark = pytest.mark.slow


USER_ID = "fuzz-tool-check"


def run_fuzz(workdir: Path, *extra: str) -> tuple[int, ET.Element, str]:
    """Examples phase only, on a SQLite file in `workdir` (kept, so the test can look inside)."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.fuzz", "--phases", "examples", "--max-time", "0",
         "--max-examples", "1", "--report-dir", str(workdir), "--user-id", USER_ID,
         "--database-url", f"sqlite:///{workdir / 'fuzz.db'}", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    junit = ET.parse(workdir / "junit.xml").getroot()  # noqa: S314 - written by schemathesis just now
    return done.returncode, junit, done.stdout + done.stderr


def test_fuzz_tool_passes_on_the_server_as_it_is(tmp_path: Path) -> None:
    status, junit, output = run_fuzz(tmp_path)
    assert status == 0, output
    assert int(junit.attrib["tests"]) >= 9, output  # every operation of the contract ran
    assert junit.attrib["failures"] == "0" and junit.attrib["errors"] == "0", output
    # A wrong token or user would pass the checks too (401 and 403 are documented answers):
    # the tasks created under the pinned user prove the requests got through.
    with closing(sqlite3.connect(tmp_path / "fuzz.db")) as db:
        (created,) = db.execute(
            "SELECT count(*) FROM tasks WHERE user_id = ?", (USER_ID,)
        ).fetchone()
    assert created >= 1, output


def test_fuzz_tool_exits_non_zero_on_a_failure(tmp_path: Path) -> None:
    # No response comes back within a microsecond: every operation fails max_response_time.
    status, junit, output = run_fuzz(tmp_path, "--", "--max-response-time", "0.000001")
    assert status != 0, output
    assert int(junit.attrib["failures"]) >= 1, output
    assert "--seed 20261120" in output, output  # the reproduction hint


def test_fuzz_tool_runs_only_the_named_operations_on_the_given_port(tmp_path: Path) -> None:
    port = free_port()
    status, junit, output = run_fuzz(
        tmp_path, "--port", str(port), "--operation", "listTasks", "--operation", "createTask"
    )
    assert status == 0, output
    assert f"fuzz: server http://127.0.0.1:{port} " in output
    names = sorted(case.attrib["name"] for case in junit.iter("testcase"))
    assert names == ["GET /api/{user_id}/tasks", "POST /api/{user_id}/tasks"], output
    summary = output.split("fuzz: covered ", 1)[1]
    assert summary.startswith(f"2 of {len(operations())} operations:"), output
    assert "  listTasks: GET /api/{user_id}/tasks\n" in summary
    assert "  createTask: POST /api/{user_id}/tasks\n" in summary
    assert "getTask" not in summary


def test_fuzz_tool_refuses_an_unknown_operation(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.fuzz", "--operation", "listTags",
         "--report-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unknown operationId listTags" in done.stderr
    assert "listTasks" in done.stderr  # the error lists what the contract has
    assert not (tmp_path / "junit.xml").exists()


def test_a_named_operation_that_did_not_run_fails_the_tool(tmp_path: Path) -> None:
    """The summary comes from the JUnit report; an asked-for operation missing from it fails."""
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="schemathesis" tests="2">'
        '<testcase name="GET /api/{user_id}/tasks"/>'
        '<testcase name="DELETE /api/{user_id}/tasks/{task_id}"><skipped/></testcase>'
        "</testsuite></testsuites>",
        encoding="utf-8",
    )
    assert fuzz.covered_operations(junit) == (
        ["GET /api/{user_id}/tasks"],
        ["DELETE /api/{user_id}/tasks/{task_id}"],
    )
    known = fuzz.contract_operations()
    assert fuzz.report_coverage(junit, known, ["listTasks"], 0) == 0
    assert fuzz.report_coverage(junit, known, ["listTasks", "deleteTask"], 0) == 1
    assert fuzz.report_coverage(junit, known, ["deleteTask"], 3) == 3

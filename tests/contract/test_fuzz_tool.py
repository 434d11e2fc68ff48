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

from tests.support import ROOT

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

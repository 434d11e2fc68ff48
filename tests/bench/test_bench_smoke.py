"""Keeps tools/bench.py from rotting: one short run of one endpoint on SQLite, end to end.

Real parts only: `todo-api serve`, both ceiling servers and wrk on loopback. It checks that the
tool produced a result for every target with real traffic and no errors, not any speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install -y wrk): the benchmark tool cannot run",
)


def _run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # SQLite
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--json-out", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return done, out


@needs_wrk
@pytest.mark.slow
def test_one_endpoint_against_both_ceilings(tmp_path: Path) -> None:
    done, out = _run_bench(
        tmp_path, "--endpoints", "get", "--connections", "2", "--duration", "1", "--warmup", "0.5"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["meta"]["database"] == "sqlite"
    runs = {run["target"]: run for run in report["sessions"][0]["runs"]}
    assert set(runs) == {"bare", "sql", "app"}
    for target, run in runs.items():
        assert run["endpoint"] == "get" and run["connections"] == 2
        assert run["requests"] > 0 and run["rps"] > 0, (target, run)
        assert run["errors"] == 0, (target, run)
        assert 0 < run["p50_ms"] <= run["p99_ms"], (target, run)
    assert runs["app"]["rss_worker_mb"] > 10  # the server processes were found and measured
    assert any(
        check["target"].startswith("zero errors") and check["ok"] for check in report["checks"]
    )
    assert "vs (b)" in done.stdout


@needs_wrk
@pytest.mark.slow
def test_a_failing_endpoint_fails_the_run(tmp_path: Path) -> None:
    """Non-2xx answers are errors: a delete pool far too small for the load must fail the run."""
    done, out = _run_bench(
        tmp_path,
        "--endpoints",
        "delete",
        "--targets",
        "app",
        "--connections",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--delete-rate",
        "0",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    run = json.loads(out.read_text())["sessions"][0]["runs"][0]
    assert run["non_2xx"] > 0 and run["first_bad_status"] == 404


def test_missing_wrk_is_explained() -> None:
    """Without wrk on PATH the tool says how to install it instead of failing obscurely."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--endpoints", "list"],
        cwd=ROOT,
        env={**os.environ, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "apt-get install -y wrk" in done.stderr

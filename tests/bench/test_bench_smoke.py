"""Keeps tools/bench.py from rotting: one short run of one endpoint, end to end.

Real parts only: `todo-api serve`, the ceiling servers and wrk on loopback, on SQLite (no
ceiling (b)) and on PostgreSQL (all three). It checks that the tool produced a result for every
target with real traffic and no errors, not any speed; and what its evaluation checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import PG_SKIP_REASON, ROOT, truncate_postgres
from tools.bench import evaluate, summary

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (apt-get install -y wrk): the benchmark tool cannot run",
)


def _run_bench(
    tmp_path: Path, *args: str, database_url: str | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # SQLite
    if database_url:
        env["DATABASE_URL"] = database_url
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


SHORT = ("--endpoints", "get", "--connections", "2", "--duration", "1", "--warmup", "0.5")


@needs_wrk
@pytest.mark.slow
def test_one_endpoint_on_sqlite_against_ceiling_a(tmp_path: Path) -> None:
    done, out = _run_bench(tmp_path, *SHORT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ceiling (b) runs on PostgreSQL only" in done.stdout
    report = json.loads(out.read_text())
    assert report["meta"]["database"] == "sqlite"
    _check_runs(report, {"bare", "app"})
    assert "vs (a)" in done.stdout


@needs_wrk
@pytest.mark.slow
@pytest.mark.postgres
def test_one_endpoint_on_postgres_against_both_ceilings(
    tmp_path: Path, migrated_postgres: str | None
) -> None:
    if migrated_postgres is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_postgres(migrated_postgres)
    done, out = _run_bench(tmp_path, *SHORT, database_url=migrated_postgres)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["meta"]["database"] == "postgresql"
    _check_runs(report, {"bare", "sql", "app"})
    assert "vs (b)" in done.stdout


def _check_runs(report: dict[str, Any], targets: set[str]) -> None:
    runs = {run["target"]: run for run in report["sessions"][0]["runs"]}
    assert set(runs) == targets
    for target, run in runs.items():
        assert run["endpoint"] == "get" and run["connections"] == 2
        assert run["requests"] > 0 and run["rps"] > 0, (target, run)
        assert run["errors"] == 0, (target, run)
        assert 0 < run["p50_ms"] <= run["p99_ms"], (target, run)
    assert runs["app"]["rss_worker_mb"] > 10  # the server processes were found and measured
    assert any(
        check["target"].startswith("zero errors") and check["ok"] for check in report["checks"]
    )


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


def _run(endpoint: str, connections: int, target: str, rps: float, p99: float = 2.0) -> Any:
    return {
        "workers": 2,
        "endpoint": endpoint,
        "connections": connections,
        "target": target,
        "rps": rps,
        "p50_ms": 1.0,
        "p99_ms": p99,
        "errors": 0,
        "rss_worker_mb": 60.0,
    }


def test_evaluation_checks_the_targets() -> None:
    """>= 50% of ceiling (b) at 8 connections for list, get, create, PUT and complete; c=64 at
    >= 90% of c=8; p99 <= 5x p50; zero errors."""
    runs = []
    for endpoint, app_rps in (("list", 600), ("get", 400), ("create", 500), ("put", 500)):
        runs += [_run(endpoint, 8, "sql", 1000), _run(endpoint, 8, "app", app_rps)]
        runs += [_run(endpoint, 64, "sql", 1000), _run(endpoint, 64, "app", app_rps * 0.95)]
    runs += [_run("complete", 8, "app", 500), _run("complete", 64, "app", 400, p99=6.0)]
    runs += [_run("delete", 8, "sql", 1000), _run("delete", 8, "app", 100)]
    checks = {c["target"]: c for c in evaluate({"sessions": [{"workers": 2, "runs": runs}]})}
    missed = {name for name, c in checks.items() if not c["ok"]}
    assert missed == {
        "w=2 c=8 get: >= 50% of ceiling (b)",
        "w=2 c=8 complete: >= 50% of ceiling (b)",  # no ceiling (b) run: not met
        "w=2 complete: req/s at c=64 >= 90% of c=8",
        "w=2 c=64 complete: p99 <= 5 x p50",
    }
    assert checks["w=2 c=8 list: >= 50% of ceiling (b)"]["measured"] == "60%"
    assert "w=2 c=64 list: >= 50% of ceiling (b)" not in checks  # the ratio is taken at c=8
    assert "w=2 c=8 delete: >= 50% of ceiling (b)" not in checks
    assert checks["zero errors (non-2xx or socket) in every run"]["ok"]

    published = summary(
        {
            "meta": {
                "started": "2026-12-04T17:00:00+00:00",
                "commit": "abc1234",
                "python": "3.11.2",
                "database": "postgresql",
                "args": {
                    "workers": [2],
                    "connections": [8, 64],
                    "duration": 3.0,
                    "warmup": 1.0,
                    "repeat": 1,
                    "tasks": 20,
                    "threads": 1,
                },
            },
            "sessions": [{"workers": 2, "runs": runs}],
            "checks": list(checks.values()),
        }
    )
    row = next(r for r in published["results"] if r["endpoint"] == "list" and r["connections"] == 8)
    assert row == {
        "workers": 2,
        "endpoint": "list",
        "connections": 8,
        "app_rps": 600,
        "ceiling_a_rps": None,
        "ceiling_b_rps": 1000,
        "ratio_a": None,
        "ratio_b": 0.6,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "errors": 0,
    }
    assert set(published["machine"]["versions"]) == {"fastapi", "pydantic", "uvicorn", "psycopg"}
    json.dumps(published)  # plain JSON


def test_publish_needs_a_full_run_on_postgres() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--publish", "--endpoints", "get"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--publish needs a full run" in done.stderr

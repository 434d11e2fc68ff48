"""TypeScript for the front end: generated types, a strict client, and a live round trip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.contract_tools.helpers import run_node
from tests.support import LiveServer, token_for
from tools import node_env, regen, ts_types

CLIENT = Path(__file__).resolve().parent / "ts_client"
TYPES = regen.GENERATED / ts_types.RELATIVE_OUTPUT


def _tsc(*args: str) -> subprocess.CompletedProcess[str]:
    return node_env.run("tsc", "-p", str(CLIENT), *args, timeout=180)


@pytest.mark.usefixtures("node_tools")
def test_generated_types_match_the_contract(tmp_path: Path) -> None:
    fresh = tmp_path / "api.d.ts"
    ts_types.generate(fresh)
    assert TYPES.exists(), "generated/ts/api.d.ts is missing: run python -m tools.regen"
    assert fresh.read_bytes() == TYPES.read_bytes(), "stale: run python -m tools.regen"
    text = fresh.read_text(encoding="utf-8")
    assert 'Priority: "low" | "medium" | "high";' in text
    assert "completed?: boolean" in text  # TaskCreate: a default is not a requirement


def test_drift_gate_compares_the_types_when_node_can_make_them(tmp_path: Path) -> None:
    fresh, current = tmp_path / "fresh", tmp_path / "current"
    for root in (fresh, current):
        (root / "ts").mkdir(parents=True)
        (root / "models.py").write_text("x = 1\n")
    (fresh / "ts" / "api.d.ts").write_text("export interface paths {}\n")
    (current / "ts" / "api.d.ts").write_text("export interface paths { edited: 1 }\n")

    assert regen.drift(fresh, current, skip=()) == ["differs: generated/ts/api.d.ts"]
    assert regen.drift(fresh, current, skip=regen.FOREIGN_SUFFIXES) == []


def test_regen_without_node_says_it_skips_the_types() -> None:
    """Where Node.js is missing, regen still checks the Python files and names what it skipped."""
    no_node = str(Path(sys.executable).parent)  # the venv's bin: python, no node
    assert shutil.which("node", path=no_node) is None
    result = subprocess.run(
        [sys.executable, "-m", "tools.regen", "--check"],
        cwd=node_env.ROOT,
        env={**os.environ, "PATH": no_node},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "TypeScript types skipped" in result.stderr
    assert "Node.js/npm not found" in result.stderr
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("node_tools")
def test_the_client_type_checks_strictly() -> None:
    # Includes four @ts-expect-error lines: a wrong enum value, a missing required field, an
    # unknown path and a string id must each fail to compile, or tsc reports the directive.
    result = _tsc("--noEmit")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_the_compiled_client_round_trips_on_a_live_server(
    tmp_path: Path, live_server: LiveServer
) -> None:
    out = tmp_path / "out"
    result = _tsc("--outDir", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    # Node resolves `openapi-fetch` from the compiled file's folder upwards.
    (tmp_path / "node_modules").symlink_to(node_env.NODE_MODULES, target_is_directory=True)
    user = "ts-client-user"
    report = run_node(
        str(out / "client.mjs"),
        env={
            "TODO_API_URL": live_server.base_url,
            "TODO_API_TOKEN": token_for(user),
            "TODO_API_USER": user,
        },
    )

    created = report["created"]
    assert created["title"] == "Buy milk" and created["priority"] == "high"
    assert created["tags"] == ["home"] and created["user_id"] == user
    assert report["listedIds"] == [created["id"]] and report["listedTotal"] == 1
    assert report["completed"] is True
    assert report["deleteStatus"] == 204
    assert report["afterDelete"]["status"] == 404
    assert report["afterDelete"]["problem"]["status"] == 404
    assert report["apiVersion"] == live_server_version(live_server)
    # The server agrees: the user has no task left.
    listed = httpx.get(
        f"{live_server.base_url}/api/{user}/tasks",
        headers={"Authorization": f"Bearer {token_for(user)}"},
        timeout=10,
    )
    assert listed.status_code == 200 and listed.json() == []


def live_server_version(server: LiveServer) -> str:
    return str(httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()["info"]["version"])

"""The client package: strict build and type tests, its version, its types, `npm pack`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.frontend.contract_check import contract
from tools import e2e, node_env, regen, ts_types

pytestmark = pytest.mark.usefixtures("frontend_tools")
HERE = Path(__file__).resolve().parent


def test_version_is_the_contracts_and_the_types_are_the_generated_ones() -> None:
    package = json.loads((e2e.CLIENT / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == contract()["info"]["version"]
    assert package["dependencies"] == {"openapi-fetch": "0.17.0"}
    shipped = (e2e.CLIENT / "dist" / "api.d.ts").read_bytes()
    assert shipped == (regen.GENERATED / ts_types.RELATIVE_OUTPUT).read_bytes()
    index = (e2e.CLIENT / "dist" / "index.d.ts").read_text(encoding="utf-8")
    assert "export type { components, operations, paths }" in index
    assert "createTodoClient(options: TodoClientOptions): TodoClient" in index


def test_the_build_refuses_a_version_other_than_the_contracts(tmp_path: Path) -> None:
    other = tmp_path / "openapi.yaml"
    other.write_text(contract_text().replace("  version: ", "  version: 9", 1), encoding="utf-8")
    result = subprocess.run(
        [str(node_env.node()), str(e2e.CLIENT / "scripts" / "build.mjs"), "--check"],
        env=node_env.quiet_env({"TODO_API_CONTRACT": str(other)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "is not the contract's info.version 9" in result.stderr


def contract_text() -> str:
    return (node_env.ROOT / "specs" / "api" / "openapi.yaml").read_text(encoding="utf-8")


def test_type_tests_the_scenario_and_the_page_type_check_strictly() -> None:
    # types_check.ts holds @ts-expect-error lines: a wrong enum, a missing title, an unknown
    # path, a string id, an unknown sort field and a missing getToken must each fail to compile.
    e2e.typecheck(HERE)
    e2e.typecheck(e2e.WEB)


def test_npm_pack_ships_the_built_package() -> None:
    result = subprocess.run(
        [str(node_env.npm()), "pack", "--dry-run", "--json"],
        cwd=e2e.CLIENT,
        env=node_env.quiet_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (packed,) = json.loads(result.stdout)
    files = {entry["path"] for entry in packed["files"]}
    assert files == {
        "package.json",
        "README.md",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/api.d.ts",
    }
    assert packed["name"] == "@todo-api/client"
    assert packed["version"] == contract()["info"]["version"]

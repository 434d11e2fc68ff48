"""mypy checks the implementation against the contract: on a copy of the tree whose contract
gained an operation and whose handler changed a signature, mypy fails naming both methods."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import write_contract_with_archive_operation
from tools import regen

ROOT = Path(__file__).resolve().parents[2]
# The copy holds the implementation and the generated code, not tests/ and tools/.
PACKAGES = ["-p", "backend", "-p", "generated"]


def _copy_tree(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "ts")
    for package in ("backend", "generated"):
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    shutil.copyfile(ROOT / "pyproject.toml", target / "pyproject.toml")


def _mypy(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tree / ".mypy_cache"), *PACKAGES],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_mypy_names_an_unimplemented_operation_and_a_changed_signature(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _copy_tree(tree)
    clean = _mypy(tree)
    assert clean.returncode == 0, clean.stdout  # the copy itself type-checks

    contract = write_contract_with_archive_operation(tmp_path / "openapi.yaml")
    shutil.rmtree(tree / "generated")
    regen.generate_into(tree / "generated", contract=contract)
    handlers = tree / "backend" / "handlers" / "tasks.py"
    source = handlers.read_text()
    changed = source.replace(
        "async def get_task(self, *, user_id: str, task_id: int,",
        "async def get_task(self, *, user_id: str, task_id: str,",
    )
    assert changed != source
    handlers.write_text(changed)

    broken = _mypy(tree)
    assert broken.returncode != 0
    assert '"archive_task"' in broken.stdout, broken.stdout  # the missing method, by name
    assert '"get_task"' in broken.stdout, broken.stdout  # the changed signature, by name

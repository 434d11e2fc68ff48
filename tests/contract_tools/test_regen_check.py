"""`python -m tools.regen --check` on a copy of the tree: the drift gate shows what differs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow


def _check(contract: Path, generated: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tools.regen", "--check"]
    command += ["--contract", str(contract), "--generated", str(generated)]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the contract and of generated/ (the gate must pass on it before any edit)."""
    contract = tmp_path / "openapi.yaml"
    shutil.copyfile(ROOT / "specs" / "api" / "openapi.yaml", contract)
    generated = tmp_path / "generated"
    shutil.copytree(ROOT / "generated", generated, ignore=shutil.ignore_patterns("__pycache__"))
    return contract, generated


def test_a_hand_edited_file_is_shown_as_a_unified_diff(tree: tuple[Path, Path]) -> None:
    contract, generated = tree
    assert _check(contract, generated).returncode == 0
    routes = generated / "routes.py"
    lines = routes.read_text(encoding="utf-8").splitlines(keepends=True)
    original = lines[5]
    lines[5] = "# edited by hand\n"
    routes.write_text("".join(lines), encoding="utf-8")
    (generated / "extra.py").write_text("stray = 1\n", encoding="utf-8")
    (generated / "formats.py").unlink()

    done = _check(contract, generated)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "--- a/generated/routes.py\n+++ b/generated/routes.py\n" in out
    assert "\n-# edited by hand\n" in out
    assert f"\n+{original}" in out
    assert "@@ -" in out
    # A stray file diffs to nothing, a missing one from nothing; both are named as well.
    assert "--- a/generated/extra.py\n+++ /dev/null\n" in out and "\n-stray = 1\n" in out
    assert "--- /dev/null\n+++ b/generated/formats.py\n" in out
    assert "not produced by the contract: generated/extra.py" in done.stderr
    assert "missing from generated/: formats.py" in done.stderr
    assert "differs: generated/routes.py" in done.stderr
    assert "run: python -m tools.regen" in done.stderr


def test_a_contract_change_is_shown_in_the_generated_code(tree: tuple[Path, Path]) -> None:
    contract, generated = tree
    text = contract.read_text(encoding="utf-8")
    assert "summary: Delete a task\n" in text
    contract.write_text(text.replace("summary: Delete a task\n", "summary: Remove a task\n"))
    done = _check(contract, generated)
    assert done.returncode == 1, done.stdout + done.stderr
    removed = [
        line
        for line in done.stdout.splitlines()
        if line.startswith("-") and "Delete a task" in line
    ]
    added = [
        line
        for line in done.stdout.splitlines()
        if line.startswith("+") and "Remove a task" in line
    ]
    assert removed and added, done.stdout

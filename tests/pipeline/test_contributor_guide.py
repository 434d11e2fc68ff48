"""The contributor guide stays true: every path it names exists, every command it quotes runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "backend" / "CLAUDE.md", ROOT / "AGENTS.md"]
TOP_LEVEL = ("backend/", "generated/", "specs/", "tools/", "tests/", "docs/")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)#\s]+)\)")
_BLOCK = re.compile(r"```(?:sh)?\n(.*?)```", re.DOTALL)
_MODULE_COMMAND = re.compile(r"(?:^|\s)(?:\S*python3?) -m ([\w.]+)")


def _paths(guide: Path) -> set[Path]:
    text = guide.read_text()
    named = {
        ROOT / word.rstrip("/")
        for snippet in _CODE.findall(text)
        for word in snippet.split()
        if word.startswith(TOP_LEVEL) and not word.startswith(("tools.", "backend."))
    }
    linked = {(guide.parent / link).resolve() for link in _LINK.findall(text)}
    return named | linked


def _modules(guide: Path) -> set[str]:
    text = guide.read_text()
    commands = [
        *_CODE.findall(text),
        *(line for b in _BLOCK.findall(text) for line in b.splitlines()),
    ]
    return {m for command in commands for m in _MODULE_COMMAND.findall(command)}


def test_the_guides_exist_and_are_short() -> None:
    for guide in GUIDES:
        assert guide.is_file(), guide
    assert len(GUIDES[0].read_text().splitlines()) <= 150


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_every_named_path_exists(guide: Path) -> None:
    paths = _paths(guide)
    assert len(paths) >= (10 if guide.name == "CLAUDE.md" else 2)
    missing = sorted(str(p.relative_to(ROOT)) for p in paths if not p.exists())
    assert missing == []


def test_every_quoted_command_runs_with_help() -> None:
    modules = set().union(*(_modules(guide) for guide in GUIDES))
    assert {"tools.regen", "tools.contract_diff", "tools.fuzz", "tools.test", "pytest"} <= modules
    for module in sorted(modules):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (module, shlex.join(result.args), result.stderr[-500:])
        assert result.stdout.strip(), module

"""The pre-commit hooks run exactly the static checks of `python3 -m tools.test`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT
from tools.test import static_checks


def test_precommit_runs_the_same_checks_as_tools_test() -> None:
    config: dict[str, Any] = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "no hook repositories"
    hooks = config["repos"][0]["hooks"]
    assert all(hook["language"] == "system" and not hook["pass_filenames"] for hook in hooks)
    entries = [hook["entry"].split() for hook in hooks]
    assert entries == [
        command for _, command in static_checks(".venv/bin/python", Path(".venv/bin"))
    ]

"""`python -m tools.contract_diff`: the breaking-change gate, its releases and its changelog.

Each case diffs a temporary copy of the contract against a temporary release made from the
same contract, so only the change under test differs; the real contract is checked against
the real latest release separately.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import contract_diff

Document = dict[str, Any]
LIST = "/api/{user_id}/tasks"
ITEM = "/api/{user_id}/tasks/{task_id}"


def _remove_delete(d: Document) -> None:
    del d["paths"][ITEM]["delete"]


def _require_query_parameter(d: Document) -> None:
    d["paths"][LIST]["get"]["parameters"].append(
        {"name": "project", "in": "query", "required": True, "schema": {"type": "string"}}
    )


def _narrow_priority(d: Document) -> None:
    d["components"]["schemas"]["Priority"]["enum"] = ["low", "high"]


def _add_optional_field(d: Document) -> None:
    d["components"]["schemas"]["TaskCreate"]["properties"]["colour"] = {
        "type": "string",
        "maxLength": 20,
    }


BREAKING: dict[str, tuple[Callable[[Document], None], str]] = {
    "removed operation": (_remove_delete, "prevent operation removal"),
    "new required query parameter": (_require_query_parameter, "prevent new required query"),
    "narrowed enum": (_narrow_priority, "cannot remove enum option 'medium'"),
}


@pytest.fixture
def workspace(tmp_path: Path, contract: Document) -> Callable[..., list[str]]:
    """Make releases/1.0.0.yaml from the contract and a changed copy; return the CLI args."""
    base = copy.deepcopy(contract)
    base["info"]["version"] = "1.0.0"
    releases = tmp_path / "releases"
    releases.mkdir()
    (releases / "1.0.0.yaml").write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")

    def make(change: Callable[[Document], None], version: str = "1.0.0") -> list[str]:
        head = copy.deepcopy(base)
        change(head)
        head["info"]["version"] = version
        spec = tmp_path / "openapi.yaml"
        spec.write_text(yaml.safe_dump(head, sort_keys=False), encoding="utf-8")
        changelog = tmp_path / "CHANGELOG.md"
        return ["--spec", str(spec), "--releases", str(releases), "--changelog", str(changelog)]

    return make


def test_releases_are_frozen_semver_copies() -> None:
    releases = sorted(contract_diff.RELEASES.glob("*.yaml"))
    assert releases, "specs/api/releases/ holds no release"
    for release in releases:
        assert contract_diff.SEMVER.match(release.stem), release.name
        assert contract_diff.version_of(contract_diff.load(release)) == release.stem
    latest = contract_diff.latest_release()
    assert latest is not None
    current = contract_diff.version_of(contract_diff.load(contract_diff.CONTRACT))
    assert contract_diff.parse_version(current) >= contract_diff.parse_version(latest.stem)


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_the_contract_passes_the_gate(capsys: pytest.CaptureFixture[str]) -> None:
    code = contract_diff.main([])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "compared openapi.yaml" in out.out


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
@pytest.mark.parametrize("case", list(BREAKING))
def test_a_breaking_change_fails_the_gate(
    case: str, workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    change, expected = BREAKING[case]
    args = workspace(change)
    assert contract_diff.main([*args, "--write-changelog"]) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert "bump the major version" in err
    changelog = Path(args[args.index("--changelog") + 1]).read_text(encoding="utf-8")
    assert "### Breaking changes (NOT allowed without a new major version)" in changelog
    assert expected in changelog


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_major_version_allows_a_breaking_change(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(_narrow_priority, version="2.0.0")
    assert contract_diff.main(args) == 0
    out = capsys.readouterr().out
    assert "BREAKING" in out and "breaking changes allowed: major version 1.0.0 -> 2.0.0" in out


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_an_optional_field_passes_and_is_released(workspace: Callable[..., list[str]]) -> None:
    args = workspace(_add_optional_field, version="1.1.0")
    # --release runs the gate first, then freezes 1.1.0 and writes its changelog section.
    assert contract_diff.main([*args, "--release"]) == 0
    releases = Path(args[args.index("--releases") + 1])
    spec = Path(args[args.index("--spec") + 1])
    assert (releases / "1.1.0.yaml").read_bytes() == spec.read_bytes()
    changelog = Path(args[args.index("--changelog") + 1]).read_text(encoding="utf-8")
    released = changelog.split("## 1.1.0", 1)[1]
    assert "`POST /api/{user_id}/tasks`" in released
    assert "property /schema/properties/colour: added" in released
    assert "### Breaking changes" not in changelog
    assert "No changes since 1.1.0." in changelog.split(contract_diff.END)[0]


def test_a_version_below_the_latest_release_fails(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(_add_optional_field, version="0.9.0")
    assert contract_diff.main(args) == 1
    assert "lower than the latest release 1.0.0" in capsys.readouterr().err


def test_a_version_that_is_not_semver_fails(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(_add_optional_field, version="1.1")
    assert contract_diff.main(args) == 1
    assert "is not MAJOR.MINOR.PATCH" in capsys.readouterr().err

"""`python -m tools.contract_diff`: the breaking-change gate, release discipline, the changelog.

Each case diffs a temporary copy of the contract against a temporary release made from the
same contract, so only the change under test differs; the real contract is checked against
the real latest release separately.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import contract_diff, contract_rules

Document = dict[str, Any]
LIST = "/api/{user_id}/tasks"
ITEM = "/api/{user_id}/tasks/{task_id}"


def _list_parameters(d: Document) -> list[Document]:
    parameters: list[Document] = d["paths"][LIST]["get"]["parameters"]
    return parameters


def _parameter(d: Document, name: str) -> Document:
    return next(p for p in _list_parameters(d) if p.get("name") == name)


def _schemas(d: Document) -> Document:
    schemas: Document = d["components"]["schemas"]
    return schemas


def _remove_delete(d: Document) -> None:
    del d["paths"][ITEM]["delete"]


def _require_query_parameter(d: Document) -> None:
    _list_parameters(d).append(
        {"name": "project", "in": "query", "required": True, "schema": {"type": "string"}}
    )


def _narrow_priority(d: Document) -> None:
    _schemas(d)["Priority"]["enum"] = ["low", "high"]


def _add_optional_field(d: Document) -> None:
    _schemas(d)["TaskCreate"]["properties"]["colour"] = {"type": "string", "maxLength": 20}


def _add_operation(d: Document) -> None:
    d["paths"]["/api/{user_id}/tags"] = {
        "parameters": d["paths"][LIST]["parameters"],
        "get": {
            "operationId": "listTags",
            "tags": ["tasks"],
            "summary": "List the user's tags",
            "responses": {
                "200": {
                    "description": "Every tag in use.",
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"type": "string"}}
                        }
                    },
                }
            },
        },
    }


def _rename_task_id(d: Document) -> None:
    d["components"]["parameters"]["TaskId"]["name"] = "id"
    d["paths"] = {path.replace("{task_id}", "{id}"): item for path, item in d["paths"].items()}


def _reword_description(d: Document) -> None:
    _parameter(d, "q")["description"] = "Plain-text search in title and description."


@dataclass(frozen=True)
class Case:
    change: Callable[[Document], None]
    says: tuple[str, ...]  # what the refusal must name


def _set(
    target: Callable[[Document], Document], key: str, value: Any
) -> Callable[[Document], None]:
    return lambda d: target(d).__setitem__(key, value)


# Every kind of change the gate must refuse without a new major version.
BREAKING: dict[str, Case] = {
    "removed operation": Case(
        _remove_delete, ("DELETE /api/{user_id}/tasks/{task_id}", "the operation was removed")
    ),
    "renamed optional query parameter": Case(
        _set(lambda d: _parameter(d, "q"), "name", "search"),
        ("query parameter 'q' was removed (renamed to 'search'?)",),
    ),
    "removed optional query parameter": Case(
        lambda d: _list_parameters(d).remove(_parameter(d, "due_before")),
        ("query parameter 'due_before' was removed",),
    ),
    "renamed required path parameter": Case(
        _rename_task_id, ("path parameter 'task_id' was removed (renamed to 'id'?)",)
    ),
    "new required query parameter": Case(
        _require_query_parameter, ("new required query parameter 'project'",)
    ),
    "optional parameter made required": Case(
        _set(lambda d: _parameter(d, "q"), "required", True),
        ("optional query parameter 'q' is now required",),
    ),
    "optional body field made required": Case(
        lambda d: _schemas(d)["TaskCreate"].setdefault("required", []).append("description"),
        ("field 'description' is now required in the request",),
    ),
    "narrowed request enum": Case(_narrow_priority, ("no longer accepts ['medium']",)),
    "removed request enum value of a parameter": Case(
        lambda d: _schemas(d)["SortOrder"].__setitem__("enum", ["asc"]),
        ("query parameter 'order'", "no longer accepts ['desc']"),
    ),
    "widened response enum": Case(
        lambda d: _schemas(d)["Priority"]["enum"].append("urgent"),
        ("may now send ['urgent']",),
    ),
    "tightened maxLength": Case(
        _set(lambda d: _parameter(d, "q")["schema"], "maxLength", 100),
        ("query parameter 'q'", "maxLength 200 -> 100"),
    ),
    "tightened minimum": Case(
        _set(lambda d: _parameter(d, "limit")["schema"], "minimum", 5),
        ("query parameter 'limit'", "minimum 1 -> 5"),
    ),
    "tightened body maxLength": Case(
        _set(lambda d: _schemas(d)["TaskCreate"]["properties"]["title"], "maxLength", 50),
        ("request body application/json/title", "maxLength 200 -> 50"),
    ),
    "changed pattern": Case(
        _set(lambda d: _parameter(d, "q")["schema"], "pattern", "^[a-z]+$"),
        ("query parameter 'q'", "[pattern changed]"),
    ),
    "removed response field": Case(
        lambda d: _schemas(d)["Task"]["properties"].pop("tags"),
        ("field 'tags' was removed",),
    ),
    "removed status code": Case(
        lambda d: d["paths"][LIST]["get"]["responses"].pop("304"),
        ("status 304 was removed",),
    ),
    "removed response header": Case(
        lambda d: d["paths"][LIST]["get"]["responses"]["200"]["headers"].pop("Link"),
        ("response 200 > header Link", "response header Link is no longer sent"),
    ),
    "changed parameter type": Case(
        _set(lambda d: _parameter(d, "skip")["schema"], "type", "string"),
        ("query parameter 'skip'", "type 'integer' -> 'string'"),
    ),
    "changed response field type": Case(
        _set(lambda d: _schemas(d)["Task"]["properties"]["completed"], "type", "string"),
        ("/completed", "type 'boolean' -> 'string'"),
    ),
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


def _path(args: list[str], option: str) -> Path:
    return Path(args[args.index(option) + 1])


def test_releases_are_frozen_semver_copies() -> None:
    releases = sorted(contract_diff.RELEASES.glob("*.yaml"))
    assert releases, "specs/api/releases/ holds no release"
    for release in releases:
        assert contract_diff.SEMVER.match(release.stem), release.name
        assert contract_diff.version_of(contract_diff.load(release)) == release.stem
        assert contract_diff.has_changelog_entry(contract_diff.CHANGELOG, release.stem)
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
def test_an_unchanged_contract_passes(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert contract_diff.main(workspace(lambda d: None)) == 0
    assert "no changes" in capsys.readouterr().out


@pytest.mark.parametrize("case", list(BREAKING))
def test_every_breaking_change_is_refused(case: str, contract: Document) -> None:
    """Our rules alone refuse each case (Optic adds its own findings for some of them)."""
    head = copy.deepcopy(contract)
    BREAKING[case].change(head)
    rules = contract_rules.compare(contract, head)
    version = contract_diff.version_of(contract)
    diff = contract_diff.Diff(base_version=version, head_version=version, rules=rules)
    found = "\n".join(str(finding) for finding in diff.breaking_changes)
    for text in BREAKING[case].says:
        assert text in found, found
    assert diff.required == "major"
    (problem,) = contract_diff.version_problems(diff)
    assert "bump the major version" in problem and "or undo them" in problem


# The gate end to end (Optic and our rules) on the cases Optic does not flag, and two it does.
END_TO_END = [
    "removed operation",
    "renamed optional query parameter",
    "removed optional query parameter",
    "tightened maxLength",
    "removed response header",
    "narrowed request enum",
]


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
@pytest.mark.parametrize("case", END_TO_END)
def test_a_breaking_change_fails_the_gate(
    case: str, workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(BREAKING[case].change)
    assert contract_diff.main([*args, "--write-changelog"]) == 1
    err = capsys.readouterr().err
    for text in BREAKING[case].says:
        assert text in err, err
    assert "bump the major version (info.version 2.0.0) or undo them" in err
    changelog = _path(args, "--changelog").read_text(encoding="utf-8")
    assert "### Breaking changes (NOT allowed without a new major version)" in changelog
    assert BREAKING[case].says[-1] in changelog


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_breaking_change_with_a_minor_bump_fails_saying_major(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(BREAKING["renamed optional query parameter"].change, version="1.1.0")
    assert contract_diff.main(args) == 1
    err = capsys.readouterr().err
    assert "bump the major version (info.version 2.0.0)" in err
    assert contract_diff.main([*args, "--release"]) == 1
    assert not (_path(args, "--releases") / "1.1.0.yaml").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_major_version_with_its_changelog_entry_allows_a_breaking_change(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(_narrow_priority, version="2.0.0")
    assert contract_diff.main(args) == 1
    assert "has no entry for 2.0.0" in capsys.readouterr().err
    assert contract_diff.main([*args, "--release"]) == 0
    capsys.readouterr()
    assert contract_diff.main(args) == 0
    section = _path(args, "--changelog").read_text(encoding="utf-8").split("## 2.0.0", 1)[1]
    assert "### Breaking changes (allowed: the major version was bumped)" in section
    assert "no longer accepts ['medium']" in section


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_new_operation_needs_a_minor_version_and_a_changelog_entry(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = workspace(_add_operation)
    assert contract_diff.main(args) == 1
    err = capsys.readouterr().err
    assert "needs a minor version" in err and "set info.version to 1.1.0" in err
    assert contract_diff.main([*args, "--release"]) == 1  # --release refuses it too
    assert "set info.version to 1.1.0" in capsys.readouterr().err

    args = workspace(_add_operation, version="1.1.0")
    assert contract_diff.main(args) == 1
    err = capsys.readouterr().err
    assert "CHANGELOG.md has no entry for 1.1.0" in err and "--release" in err

    assert contract_diff.main([*args, "--release"]) == 0
    assert (_path(args, "--releases") / "1.1.0.yaml").read_bytes() == _path(
        args, "--spec"
    ).read_bytes()
    changelog = _path(args, "--changelog").read_text(encoding="utf-8")
    section = changelog.split("\n## 1.1.0\n", 1)[1]
    assert "Needs a minor version" in section
    assert "`GET /api/{user_id}/tags`: new operation (`operation added`)" in section
    assert "No changes since 1.1.0." in changelog.split(contract_diff.END)[0]
    capsys.readouterr()
    assert contract_diff.main(args) == 0, capsys.readouterr().err
    assert "no changes" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_larger_minor_or_a_major_bump_than_needed(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert contract_diff.main(workspace(_add_operation, version="1.3.0")) == 1
    assert "skips versions: the next minor version after 1.0.0 is 1.1.0" in (
        capsys.readouterr().err
    )
    # A bigger kind of bump than needed is allowed (it only says more than it must).
    args = workspace(_add_operation, version="2.0.0")
    assert contract_diff.main([*args, "--release"]) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_description_fix_needs_a_patch_version(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert contract_diff.main(workspace(_reword_description)) == 1
    err = capsys.readouterr().err
    assert "needs a patch version" in err and "set info.version to 1.0.1" in err
    args = workspace(_reword_description, version="1.0.1")
    assert contract_diff.main([*args, "--release"]) == 0
    assert contract_diff.main(args) == 0


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_an_additive_change_with_a_patch_bump_fails(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert contract_diff.main(workspace(_add_optional_field, version="1.0.1")) == 1
    err = capsys.readouterr().err
    assert "needs a minor version, but info.version 1.0.1 is a patch bump" in err


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_a_bump_without_a_change_fails(
    workspace: Callable[..., list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert contract_diff.main(workspace(lambda d: None, version="1.1.0")) == 1
    assert "nothing changed since release 1.0.0: set it back to 1.0.0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("node_tools")
def test_an_optional_field_passes_and_is_released(workspace: Callable[..., list[str]]) -> None:
    args = workspace(_add_optional_field, version="1.1.0")
    # --release runs the gate first, then freezes 1.1.0 and writes its changelog section.
    assert contract_diff.main([*args, "--release"]) == 0
    releases, spec = _path(args, "--releases"), _path(args, "--spec")
    assert (releases / "1.1.0.yaml").read_bytes() == spec.read_bytes()
    changelog = _path(args, "--changelog").read_text(encoding="utf-8")
    released = changelog.split("## 1.1.0", 1)[1]
    assert "`POST /api/{user_id}/tasks`" in released
    assert "property /schema/properties/colour: added" in released
    assert "new field 'colour'" in released
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


@pytest.mark.parametrize(
    ("base", "kind", "expected"),
    [("1.2.3", "major", "2.0.0"), ("1.2.3", "minor", "1.3.0"), ("1.2.3", "patch", "1.2.4")],
)
def test_next_version(base: str, kind: contract_rules.Kind, expected: str) -> None:
    assert contract_diff.next_version(base, kind) == expected
    assert contract_diff.bump_kind(base, expected) == kind

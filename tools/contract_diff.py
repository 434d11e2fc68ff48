"""Breaking-change gate and release discipline for the contract: `python -m tools.contract_diff`.

    python -m tools.contract_diff                    # compare with the latest release
    python -m tools.contract_diff --write-changelog  # ... and rewrite CHANGELOG's Unreleased part
    python -m tools.contract_diff --release          # freeze it as releases/<version>.yaml

Releases are frozen copies, specs/api/releases/<major>.<minor>.<patch>.yaml. Two differs read
the contract against the latest release: Optic (`optic diff --check`, npm @useoptic/optic, which
reads OpenAPI 3.1) and our own rules (tools.contract_rules, on documents with resolved $refs),
which also refuse what Optic lets through (a removed or renamed optional parameter, a tightened
constraint, a removed response header) and classify every change as a major, minor or patch
bump. When the contract differs from the release, the gate (exit 1) requires `info.version`
to be the next version of at least that kind (major for breaking changes) and a CHANGELOG
section for it, which `--release` writes while it freezes the release. Optic gets both
documents as JSON normalised by PyYAML, because its own YAML reader does not expand merge keys
(`<<: *tags`) and reports phantom changes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools import contract_rules, node_env
from tools.contract_rules import Change, Kind

ROOT = node_env.ROOT
CONTRACT = ROOT / "specs" / "api" / "openapi.yaml"
RELEASES = ROOT / "specs" / "api" / "releases"
CHANGELOG = ROOT / "specs" / "api" / "CHANGELOG.md"
# Optic's breaking-changes ruleset, told to report across major versions too.
OPTIC_STANDARD = node_env.TOOLS / "optic.yml"

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
START, END = "<!-- unreleased:start -->", "<!-- unreleased:end -->"
_METHODS = "GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS|TRACE"
_OPERATION = re.compile(rf"^(?:x|✔) (?P<name>(?:{_METHODS}) \S+): ?(?P<change>added|removed)?$")
_SECTION = re.compile(r"^(?P<name>specification details):$")
_FINDING = re.compile(r"^\s*x \[(?P<rule>[^\]]+)\] (?P<message>.*)$")
_CHANGE = re.compile(r"^(?P<indent>\s*)- (?P<text>.*)$")
_NOISE = re.compile(r"^\s*(at \S+:\d+:\d+|Rerun this command.*)$")

CHANGELOG_HEAD = """# API contract changelog

What changed in the published contract (`specs/api/openapi.yaml`), for the front-end team,
newest first. The Unreleased part is rewritten by `python -m tools.contract_diff
--write-changelog` from the diff against the latest release in `specs/api/releases/`;
`python -m tools.contract_diff --release` freezes the contract and turns it into a version
section. Breaking changes need a new major version, additions a new minor version, and
documentation-only fixes a new patch version.
"""
# What each kind of bump means, for messages and the changelog.
KIND_MEANING: dict[Kind, str] = {
    "major": "breaking changes: existing clients can break",
    "minor": "additions or changes that existing clients do not notice",
    "patch": "documentation only: descriptions, summaries, examples",
}


class GateError(RuntimeError):
    """The comparison itself could not be made (bad version, unreadable document, tool failure)."""


def parse_version(text: str) -> tuple[int, int, int]:
    match = SEMVER.match(text)
    if match is None:
        raise GateError(f"info.version {text!r} is not MAJOR.MINOR.PATCH")
    return int(match[1]), int(match[2]), int(match[3])


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("info"), dict):
        raise GateError(f"{path} is not an OpenAPI document")
    return document


def version_of(document: dict[str, Any]) -> str:
    return str(document["info"].get("version", ""))


def latest_release(releases: Path = RELEASES) -> Path | None:
    """The release file with the highest semantic version, or None before the first release."""
    candidates = [path for path in releases.glob("*.yaml") if SEMVER.match(path.stem)]
    return max(candidates, key=lambda path: parse_version(path.stem), default=None)


def bump_kind(base: str, head: str) -> Kind | None:
    """The kind of bump from `base` to a higher `head` (None when `head` is not higher)."""
    old, new = parse_version(base), parse_version(head)
    if new <= old:
        return None
    if new[0] > old[0]:
        return "major"
    return "minor" if new[1] > old[1] else "patch"


def next_version(base: str, kind: Kind) -> str:
    """The version right after `base` for a bump of `kind`."""
    major, minor, patch = parse_version(base)
    if kind == "major":
        return f"{major + 1}.0.0"
    return f"{major}.{minor + 1}.0" if kind == "minor" else f"{major}.{minor}.{patch + 1}"


def has_changelog_entry(changelog: Path, version: str) -> bool:
    """True when CHANGELOG.md has a `## <version>` section."""
    if not changelog.exists():
        return False
    heading = re.compile(rf"^## {re.escape(version)}\s*$", re.MULTILINE)
    return heading.search(changelog.read_text(encoding="utf-8")) is not None


@dataclass(frozen=True)
class Finding:
    """One breaking change, as Optic's rule names it."""

    where: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.message}"


@dataclass
class Diff:
    base_version: str
    head_version: str
    changes: dict[str, list[str]] = field(default_factory=dict)  # Optic: operation -> lines
    findings: list[Finding] = field(default_factory=list)  # Optic's breaking changes
    rules: list[Change] = field(default_factory=list)  # ours, each with the bump it needs
    report: str = ""

    @property
    def breaking_changes(self) -> list[Finding]:
        """Optic's breaking findings, then ours."""
        ours = [Finding(c.where, c.rule, c.message) for c in self.rules if c.kind == "major"]
        return [*self.findings, *ours]

    @property
    def breaking(self) -> bool:
        return bool(self.breaking_changes)

    @property
    def required(self) -> Kind | None:
        """The bump the changes need; None when the contract is the release."""
        if self.breaking:
            return "major"
        # Our rules see every difference (Optic's report also lists info.version itself).
        return contract_rules.required_bump(self.rules)

    @property
    def major_bumped(self) -> bool:
        return parse_version(self.head_version)[0] > parse_version(self.base_version)[0]


def parse_report(text: str) -> tuple[dict[str, list[str]], list[Finding]]:
    """Turn Optic's text report into change lines per operation and the breaking findings."""
    changes: dict[str, list[str]] = {}
    findings: list[Finding] = []
    current: str | None = None
    stack: list[tuple[int, str]] = []  # (indent, text) of the enclosing "- " lines
    pending: tuple[int, str] | None = None  # last "- " line, a leaf unless something nests in it

    def flush_pending(next_indent: int) -> None:
        nonlocal pending
        if pending is not None and current is not None and next_indent <= pending[0]:
            path = [text for _, text in stack if text] + [pending[1]]
            changes[current].append(" > ".join(path))
        pending = None

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or _NOISE.match(line):
            continue
        header = _OPERATION.match(line) or _SECTION.match(line)
        if header is not None:
            flush_pending(0)
            current, stack = header["name"], []
            changes.setdefault(current, [])
            change = header.groupdict().get("change")
            if change:
                changes[current].append(f"operation {change}")
            continue
        finding = _FINDING.match(line)
        if finding is not None:
            # A finding follows the line it is about: that line may still be pending.
            about = [pending[1].split(":")[0]] if pending is not None else []
            context = " > ".join([current or "contract", *(t for _, t in stack if t), *about])
            findings.append(Finding(context, finding["rule"], finding["message"]))
            continue
        change_line = _CHANGE.match(line)
        if change_line is not None and current is not None:
            indent = len(change_line["indent"])
            flush_pending(indent)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            text_ = change_line["text"].rstrip(":").strip()
            # A container line ("- request:") ends with a colon and nothing after it.
            if change_line["text"].endswith(":"):
                stack.append((indent, text_))
            else:
                pending = (indent, text_)
    flush_pending(0)
    return {name: lines for name, lines in changes.items() if lines}, findings


def _as_json(document: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return path


def compare(base: Path, head: Path) -> Diff:
    """Run `optic diff --check` on the two documents and read its verdict."""
    base_doc, head_doc = load(base), load(head)
    diff = Diff(base_version=version_of(base_doc), head_version=version_of(head_doc))
    diff.rules = contract_rules.compare(base_doc, head_doc)
    parse_version(diff.base_version)
    parse_version(diff.head_version)
    with tempfile.TemporaryDirectory(prefix="contract-diff-") as tmp:
        # Optic names the files in its report: call them by their versions.
        old = _as_json(base_doc, Path(tmp) / f"release-{diff.base_version}.json")
        new = _as_json(head_doc, Path(tmp) / f"contract-{diff.head_version}.json")
        result = node_env.run(
            "optic",
            "diff",
            old.name,
            new.name,
            "--check",
            "--standard",
            str(OPTIC_STANDARD),
            cwd=Path(tmp),
        )
    diff.report = node_env.without_banners(result.stdout + result.stderr)
    diff.changes, diff.findings = parse_report(diff.report)
    if result.returncode not in (0, 1) or (result.returncode == 1 and not diff.findings):
        raise GateError(f"optic diff failed (exit {result.returncode}):\n{diff.report}")
    if result.returncode == 0 and diff.findings:
        raise GateError(f"optic passed but its report lists failures:\n{diff.report}")
    return diff


def render_unreleased(diff: Diff | None, head_version: str) -> str:
    """The Unreleased part of the changelog (without its markers)."""
    if diff is None:
        return f"## Unreleased ({head_version})\n\nNot released yet: there is no earlier release.\n"
    title = f"## Unreleased ({diff.head_version}, compared with release {diff.base_version})"
    return f"{title}\n\n{_render_body(diff)}"


def _render_body(diff: Diff) -> str:
    required = diff.required
    if required is None:
        return f"No changes since {diff.base_version}.\n"
    lines = [
        f"Needs a {required} version ({KIND_MEANING[required]}): "
        f"{next_version(diff.base_version, required)} or a higher kind of bump.",
        "",
    ]
    if diff.breaking:
        verdict = (
            "allowed: the major version was bumped"
            if diff.major_bumped
            else "NOT allowed without a new major version"
        )
        lines += [f"### Breaking changes ({verdict})", ""]
        removed = {name for name, changes in diff.changes.items() if "operation removed" in changes}
        lines += [
            f"- `{f.where}`: {f.message} (`{f.rule}`)"
            for f in diff.breaking_changes
            # A removed operation fails every rule below it too; its removal says it all.
            if f.rule in ("prevent operation removal", "operation removed")
            or not any(f.where == op or f.where.startswith(f"{op} > ") for op in removed)
        ]
        lines.append("")
    for kind, heading in (("minor", "Additions and other changes"), ("patch", "Documentation")):
        found = [c for c in diff.rules if c.kind == kind]
        if found:
            lines += [f"### {heading}", ""]
            lines += [f"- `{c.where}`: {c.message} (`{c.rule}`)" for c in found]
            lines.append("")
    if diff.changes:
        lines += ["### Changes (Optic's diff)", ""]
        for name, changes in diff.changes.items():
            lines += [f"- `{name}`: {change}" for change in changes]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_release(version: str, diff: Diff | None, document: dict[str, Any]) -> str:
    """A frozen section for `version`, from the Unreleased diff (or a summary for the first)."""
    if diff is None:
        operations = [
            f"- `{method.upper()} {path}` ({op['operationId']}): {op.get('summary', '')}"
            for path, item in document.get("paths", {}).items()
            for method, op in item.items()
            if isinstance(op, dict) and "operationId" in op
        ]
        body = "First published contract. Operations:\n\n" + "\n".join(operations)
        return f"## {version}\n\n{body}\n"
    return f"## {version}\n\nCompared with {diff.base_version}. {_render_body(diff)}"


def write_changelog(unreleased: str, path: Path = CHANGELOG, released: str | None = None) -> None:
    """Rewrite the Unreleased block; put a newly released section right below it."""
    text = path.read_text(encoding="utf-8") if path.exists() else CHANGELOG_HEAD
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    middle = f"{START}\n{unreleased.rstrip()}\n{END}\n"
    if released is not None:
        middle += f"\n{released.rstrip()}\n"
    tail = after.lstrip("\n")
    path.write_text(before + middle + ("\n" + tail if tail.strip() else ""), encoding="utf-8")


def version_problems(diff: Diff) -> list[str]:
    """What is wrong with `info.version` for the changes since the release (empty: nothing)."""
    base, head, required = diff.base_version, diff.head_version, diff.required
    actual = bump_kind(base, head)
    if required is None:
        if actual is None:
            return []
        return [
            f"info.version is {head} but nothing changed since release {base}: "
            f"set it back to {base}"
        ]
    wanted = next_version(base, required)
    if required == "major" and actual != "major":
        return [
            f"{len(diff.breaking_changes)} breaking change(s) against release {base} while "
            f"info.version is {head}: bump the major version (info.version {wanted}) or undo "
            "them; existing clients would break without notice"
        ]
    if actual is None or contract_rules.KINDS.index(actual) < contract_rules.KINDS.index(required):
        now = "unchanged" if actual is None else f"a {actual} bump"
        return [
            f"the contract changed since release {base} ({KIND_MEANING[required]}) and needs "
            f"a {required} version, but info.version {head} is {now}: set info.version to "
            f"{wanted}, then run `python -m tools.contract_diff --release`"
        ]
    if head != next_version(base, actual):
        return [
            f"info.version {head} skips versions: the next {actual} version after {base} "
            f"is {next_version(base, actual)}"
        ]
    return []


def gate(
    spec: Path, releases: Path, changelog: Path | None = None
) -> tuple[Diff | None, list[str]]:
    """The diff against the latest release (None before the first) and the problems to report.

    With `changelog`, a contract that differs from the release also needs a section for its
    version there.
    """
    head_version = version_of(load(spec))
    parse_version(head_version)
    release = latest_release(releases)
    if release is None:
        return None, []
    if parse_version(head_version) < parse_version(release.stem):
        raise GateError(
            f"info.version {head_version} is lower than the latest release {release.stem}"
        )
    diff = compare(release, spec)
    problems = version_problems(diff)
    if (
        changelog is not None
        and diff.required is not None
        and not problems
        and not has_changelog_entry(changelog, head_version)
    ):
        problems.append(
            f"{changelog.name} has no entry for {head_version}: run `python -m "
            f"tools.contract_diff --release` (it freezes releases/{head_version}.yaml and "
            f"writes the entry), or add a `## {head_version}` section by hand"
        )
    return diff, problems


def release(spec: Path, releases: Path, changelog: Path) -> int:
    """Freeze `spec` as releases/<version>.yaml and close the Unreleased changelog section."""
    document = load(spec)
    version = version_of(document)
    target = releases / f"{version}.yaml"
    if target.exists() and target.read_bytes() == spec.read_bytes():
        print(f"release {version} already exists and matches the contract")
        return 0
    diff, problems = gate(spec, releases)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if diff is not None and diff.required is None:
        print(f"nothing to release: no changes since {diff.base_version}", file=sys.stderr)
        return 1
    if target.exists():
        print(f"release {version} already exists and differs: bump info.version", file=sys.stderr)
        return 1
    releases.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec, target)
    write_changelog(
        f"## Unreleased ({version}, compared with release {version})\n\n"
        f"No changes since {version}.",
        changelog,
        released=render_release(version, diff, document),
    )
    print(f"released {version}: {target} (section `## {version}` in {changelog})")
    return 0


def set_client_version(version: str, package: Path | None = None) -> None:
    """The TypeScript client package ships as the contract's version (its build checks it)."""
    package = package or ROOT / "clients" / "typescript" / "package.json"
    manifest = json.loads(package.read_text(encoding="utf-8"))
    if manifest.get("version") != version:
        manifest["version"] = version
        package.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        print(f"{package.relative_to(ROOT)}: version {version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=CONTRACT, help="the contract to check")
    parser.add_argument("--releases", type=Path, default=RELEASES, help="folder of releases")
    parser.add_argument("--changelog", type=Path, default=CHANGELOG, help="CHANGELOG.md to use")
    parser.add_argument(
        "--write-changelog", action="store_true", help="rewrite its Unreleased part"
    )
    parser.add_argument("--release", action="store_true", help="freeze the contract as a release")
    args = parser.parse_args(argv)
    try:
        if args.release:
            status = release(args.spec, args.releases, args.changelog)
            if status == 0 and args.spec == CONTRACT:
                set_client_version(version_of(load(args.spec)))
            return status
        diff, problems = gate(args.spec, args.releases, args.changelog)
    except node_env.NodeToolsMissing as exc:
        print(f"contract_diff: cannot run: {exc}", file=sys.stderr)
        return 2
    except GateError as exc:
        print(f"contract_diff: {exc}", file=sys.stderr)
        return 1
    if args.write_changelog:
        write_changelog(render_unreleased(diff, version_of(load(args.spec))), args.changelog)
        print(f"wrote {args.changelog}")
    if diff is None:
        print(
            f"contract_diff: no release in {args.releases}: freeze one with --release",
            file=sys.stderr,
        )
        return 1
    print(f"compared {args.spec.name} ({diff.head_version}) with release {diff.base_version}:")
    for change in diff.rules:
        if change.kind != "major":
            print(f"  {change.kind}: {change}")
    if diff.required is None:
        print("  no changes")
    else:
        print(f"  needs a {diff.required} version: {KIND_MEANING[diff.required]}")
    for finding in diff.breaking_changes:
        print(f"  BREAKING {finding}", file=sys.stderr if problems else sys.stdout)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if diff.breaking:
        print(f"breaking changes allowed: major version {diff.base_version} -> {diff.head_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Validate and lint the contract: `python -m tools.lint_contract [SPEC]`.

Runs `redocly lint` with tools/redocly.yaml: OpenAPI 3.1 structural validation, Redocly's
`recommended-strict` set, and our own rules (operationId, summary and a tag on every
operation; examples on request bodies and success responses; every 4xx/5xx a `Problem` in
application/problem+json; no unused components). Exits 1 on any finding of any severity,
2 when the Node tools are not installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tools import node_env

CONTRACT = node_env.ROOT / "specs" / "api" / "openapi.yaml"
CONFIG = node_env.TOOLS / "redocly.yaml"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    pointer: str

    def __str__(self) -> str:
        return f"{self.severity}: [{self.rule}] {self.message} (at {self.pointer})"


def lint(spec: Path = CONTRACT) -> list[Finding]:
    """Every problem Redocly reports for `spec` under our configuration."""
    result = node_env.run(
        "redocly", "lint", str(spec), "--config", str(CONFIG), "--format", "json", timeout=120
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        # Redocly could not even produce a report (unreadable file, bad config): that is a finding.
        raise RuntimeError(
            f"redocly lint gave no JSON report (exit {result.returncode}):\n"
            f"{result.stdout}\n{node_env.without_banners(result.stderr)}".strip()
        ) from exc
    findings = [
        Finding(
            rule=problem["ruleId"],
            severity=problem["severity"],
            message=problem["message"],
            pointer=(problem.get("location") or [{}])[0].get("pointer", "#"),
        )
        for problem in report.get("problems", [])
    ]
    if result.returncode != 0 and not findings:
        raise RuntimeError(
            f"redocly lint failed without findings:\n{node_env.without_banners(result.stderr)}"
        )
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("spec", nargs="?", type=Path, default=CONTRACT, help="OpenAPI document")
    args = parser.parse_args(argv)
    try:
        findings = lint(args.spec)
    except node_env.NodeToolsMissing as exc:
        print(f"lint_contract: cannot run: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"lint_contract: {exc}", file=sys.stderr)
        return 1
    if findings:
        print(f"{args.spec}: {len(findings)} finding(s):", file=sys.stderr)
        for finding in findings:
            print(f"  {finding}", file=sys.stderr)
        return 1
    print(f"{args.spec}: valid OpenAPI 3.1, no lint findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())

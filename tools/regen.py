"""Regenerate generated/ from specs/api/openapi.yaml; `--check` is the drift gate.

    python -m tools.regen           # rewrite generated/
    python -m tools.regen --check   # fail with a unified diff of every stale file (exit 1)

Generation is byte-for-byte deterministic: pinned fastapi-code-generator, black and isort
(pyproject.toml's dev extra), no timestamp, and formatting settings read from pyproject.toml.
generated/ts/api.d.ts (TypeScript types for the front end, tools.ts_types) is written and
compared too where the Node tools are installed (`npm ci --prefix tools`); elsewhere regen says
so and leaves the .ts files alone.
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from tools import ts_types
from tools.codegen_visitor import use_validated_types

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "specs" / "api" / "openapi.yaml"
GENERATED = ROOT / "generated"
TEMPLATES = ROOT / "tools" / "templates"
VISITOR = ROOT / "tools" / "codegen_visitor.py"
# Files under generated/ that only the Node tools can produce (tools.ts_types): compared and
# written only where those tools are installed.
FOREIGN_SUFFIXES = (".ts",)


def generate_into(output_dir: Path, contract: Path = CONTRACT) -> None:
    """Run fastapi-code-generator with our templates and visitor into `output_dir`."""
    previous = Path.cwd()
    os.chdir(ROOT)  # black/isort read their settings from the working directory's pyproject
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the generator's own deprecation noise
            from datamodel_code_generator.format import PythonVersion
            from fastapi_code_generator.cli import generate_code

            generate_code(
                input_name=CONTRACT.name,
                input_text=contract.read_text(encoding="utf-8"),
                encoding="utf-8",
                output_dir=output_dir,
                template_dir=TEMPLATES,
                custom_visitors=[VISITOR],
                disable_timestamp=True,
                strict_nullable=True,
                use_annotated=True,
                python_version=PythonVersion.PY_311,
            )
        models = output_dir / "models.py"
        models.write_text(use_validated_types(models.read_text(encoding="utf-8")), encoding="utf-8")
    finally:
        os.chdir(previous)


def _python_files(directory: Path, skip: tuple[str, ...] = FOREIGN_SUFFIXES) -> set[str]:
    return {
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and not (skip and path.name.endswith(skip))
    }


def drift(fresh: Path, current: Path, skip: tuple[str, ...] = FOREIGN_SUFFIXES) -> list[str]:
    """Describe every file that differs between a fresh generation and generated/."""
    fresh_files, current_files = _python_files(fresh, skip), _python_files(current, skip)
    problems = [f"missing from generated/: {name}" for name in sorted(fresh_files - current_files)]
    problems += [
        f"not produced by the contract: generated/{name}"
        for name in sorted(current_files - fresh_files)
    ]
    problems += [
        f"differs: generated/{name}"
        for name in sorted(fresh_files & current_files)
        if not filecmp.cmp(fresh / name, current / name, shallow=False)
    ]
    return problems


def unified_diff(fresh: Path, current: Path, skip: tuple[str, ...] = FOREIGN_SUFFIXES) -> str:
    """A unified diff from generated/ (as it is) to what the contract produces, file by file."""
    fresh_files, current_files = _python_files(fresh, skip), _python_files(current, skip)
    chunks: list[str] = []
    for name in sorted(fresh_files | current_files):
        old = _lines(current / name) if name in current_files else []
        new = _lines(fresh / name) if name in fresh_files else []
        if old == new and name in fresh_files and name in current_files:
            continue
        chunks.extend(
            difflib.unified_diff(
                old,
                new,
                fromfile=f"a/generated/{name}" if name in current_files else "/dev/null",
                tofile=f"b/generated/{name}" if name in fresh_files else "/dev/null",
            )
        )
    # A file without a final newline would glue the next header onto its last line.
    return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return [f"<binary file, {path.stat().st_size} bytes>\n"]


def _generate_types(fresh: Path, contract: Path = CONTRACT) -> tuple[str, ...]:
    """Add the TypeScript types to `fresh` when possible; the suffixes to leave out otherwise."""
    reason = ts_types.unavailable_reason()
    if reason is not None:
        print(
            f"TypeScript types skipped (generated/ts/ not written or checked): {reason}",
            file=sys.stderr,
        )
        return FOREIGN_SUFFIXES
    ts_types.generate(fresh / ts_types.RELATIVE_OUTPUT, contract=contract)
    return ()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if generated/ is out of date")
    parser.add_argument("--contract", type=Path, default=CONTRACT, help=argparse.SUPPRESS)
    parser.add_argument("--generated", type=Path, default=GENERATED, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    contract: Path = args.contract.resolve()
    generated: Path = args.generated.resolve()

    with tempfile.TemporaryDirectory(prefix="todo-regen-") as tmp:
        fresh = Path(tmp) / "generated"
        generate_into(fresh, contract=contract)
        skip = _generate_types(fresh, contract)
        if args.check:
            if not generated.exists():
                print(f"{generated} does not exist; run: python -m tools.regen", file=sys.stderr)
                return 1
            problems = drift(fresh, generated, skip)
            if problems:
                # The diff goes to stdout (it can be piped to `git apply`), the verdict to stderr.
                sys.stdout.write(unified_diff(fresh, generated, skip))
                sys.stdout.flush()
                print("generated/ is out of date with specs/api/openapi.yaml:", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                print("run: python -m tools.regen", file=sys.stderr)
                return 1
            print("generated/ matches specs/api/openapi.yaml")
            return 0
        generated.mkdir(exist_ok=True)
        for name in _python_files(generated, skip) - _python_files(fresh, skip):
            (generated / name).unlink()
        for name in _python_files(fresh, skip):
            target = generated / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh / name, target)
        print(f"regenerated {len(_python_files(fresh, skip))} files in generated/")
        return 0


if __name__ == "__main__":
    sys.exit(main())

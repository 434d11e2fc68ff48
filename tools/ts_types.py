"""TypeScript types for the front end: `python -m tools.ts_types [--out FILE]`.

openapi-typescript turns the contract into generated/ts/api.d.ts (`paths`, `components`,
`operations`), which openapi-fetch uses to type every call. `python -m tools.regen` calls
`generate` too, so the types are part of the drift gate wherever the Node tools are installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools import node_env

CONTRACT = node_env.ROOT / "specs" / "api" / "openapi.yaml"
# Where the types live, relative to generated/.
RELATIVE_OUTPUT = Path("ts") / "api.d.ts"


def unavailable_reason() -> str | None:
    """Why the types cannot be generated here, or None when they can."""
    return node_env.missing_reason()


def generate(output: Path, contract: Path = CONTRACT) -> None:
    """Write the types for `contract` to `output` (byte-for-byte deterministic)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    result = node_env.run(
        "openapi-typescript",
        str(contract),
        "--output",
        str(output),
        # A property with a default (TaskCreate.completed, .priority, .tags) may be left out of a
        # request; openapi-typescript's default would make the front end send it every time.
        "--default-non-nullable",
        "false",
        timeout=120,
    )
    if result.returncode != 0 or not output.exists():
        raise RuntimeError(
            f"openapi-typescript failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{node_env.without_banners(result.stderr)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=node_env.ROOT / "generated" / RELATIVE_OUTPUT, help="file"
    )
    args = parser.parse_args(argv)
    try:
        generate(args.out)
    except node_env.NodeToolsMissing as exc:
        print(f"ts_types: cannot run: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

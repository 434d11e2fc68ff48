"""Static, self-contained HTML reference of the contract: `python -m tools.docs_html [--out FILE]`.

`redocly build-docs --inlineBundle` pre-renders Redoc 3 and embeds its scripts, so the single
file opens from disk with no server (the default loads Redoc from Redocly's CDN). Telemetry is
off at build time (tools/redocly.yaml and REDOCLY_TELEMETRY), which keeps the page from
reporting readers' visits. The one outside reference left, the sidebar's Redocly logo, is
replaced by an empty inline image. tests/contract_tools/test_docs_browser.py opens the file in
headless Chromium and records every request it makes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from tools import node_env

CONTRACT = node_env.ROOT / "specs" / "api" / "openapi.yaml"
CONFIG = node_env.TOOLS / "redocly.yaml"
DEFAULT_OUT = node_env.ROOT / "reports" / "api-reference.html"
CDN = "https://cdn.redoc.ly/"
# The bundle's logo <img> (it hides itself if the image fails); an empty SVG loads nothing.
LOGOS = ("redoc/logo-mini-full.svg", "redoc/logo-mini.svg")
EMPTY_SVG = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"


def build(out: Path = DEFAULT_OUT, contract: Path = CONTRACT) -> Path:
    """Write the reference to `out` and return it."""
    info = yaml.safe_load(contract.read_text(encoding="utf-8"))["info"]
    out.parent.mkdir(parents=True, exist_ok=True)
    result = node_env.run(
        "redocly",
        "build-docs",
        str(contract),
        "--output",
        str(out),
        "--inlineBundle",
        "--title",
        f"{info['title']} {info['version']}",
        "--config",
        str(CONFIG),
        timeout=180,
    )
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"redocly build-docs failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{node_env.without_banners(result.stderr)}"
        )
    html = out.read_text(encoding="utf-8")
    for logo in LOGOS:
        html = html.replace(CDN + logo, EMPTY_SVG)
    if CDN in html:
        raise RuntimeError(f"{out} still refers to {CDN}: a new outside asset to inline")
    out.write_text(html, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="HTML file to write")
    parser.add_argument("--spec", type=Path, default=CONTRACT, help="OpenAPI document")
    args = parser.parse_args(argv)
    try:
        out = build(args.out, args.spec)
    except node_env.NodeToolsMissing as exc:
        print(f"docs_html: cannot run: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB, no outside host)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

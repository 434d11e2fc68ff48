"""API docs in a real headless Chromium: every operation renders, and no outside host is asked.

Both the static reference (`python -m tools.docs_html`, opened from disk) and the live server's
Swagger UI at /docs. browser_check.mjs records every request the page makes and aborts any that
would leave the page's own origin, so a leak fails the test without leaving the machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.contract_tools.helpers import browser_visits
from tests.support import LiveServer
from tools import docs_html

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("node_tools")]


def _assert_only_own_requests(report: dict[str, Any], origin: str) -> None:
    assert report["requests"], "the browser recorded no request at all"
    assert report["foreign"] == [], f"requests to other hosts: {report['foreign']}"
    assert all(url.startswith(origin) or url.startswith("data:") for url in report["requests"])
    assert report["errors"] == [], report["errors"]


def test_static_reference_renders_every_operation_offline(
    tmp_path: Path, chromium: str, operations: list[dict[str, str]], contract: dict[str, Any]
) -> None:
    page = docs_html.build(tmp_path / "api-reference.html")
    title = f"{contract['info']['title']} ({contract['info']['version']})"
    # Redoc 3 gives each operation its own route, #/<tag>/<operationid in lower case>.
    visits: list[dict[str, Any]] = [{"route": "", "expect": title, "inHeading": True}] + [
        {
            "route": f"#/{op['tag']}/{op['operationId'].lower()}",
            "expect": op["summary"],
            "inHeading": True,
        }
        for op in operations
    ]
    report = browser_visits(page.as_uri(), visits, chromium)

    _assert_only_own_requests(report, "file://")
    for visit, op in zip(report["pages"][1:], operations, strict=True):
        assert visit["rendered"], f"{op['operationId']}: {op['summary']!r} never appeared"
        assert op["summary"] in visit["headings"], (op["operationId"], visit["headings"])
        assert visit["route"] in visit["hrefs"], op["operationId"]
    assert title in report["pages"][0]["headings"]


def test_live_swagger_ui_renders_every_operation_from_its_own_host(
    live_server: LiveServer, chromium: str, operations: list[dict[str, str]]
) -> None:
    report = browser_visits(
        f"{live_server.base_url}/docs",
        [{"route": "", "expect": operations[-1]["summary"]}],
        chromium,
    )

    _assert_only_own_requests(report, live_server.base_url)
    assert f"{live_server.base_url}/openapi.json" in report["requests"]
    (visit,) = report["pages"]
    assert visit["rendered"], visit["text"][:2000]
    for op in operations:
        # Swagger UI renders each operation as a block with id operations-<tag>-<operationId>.
        assert f"operations-{op['tag']}-{op['operationId']}" in visit["ids"], op
        assert op["summary"] in visit["text"], op

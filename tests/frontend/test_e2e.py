"""The reference web client in headless Chromium, against a real Better Auth and the real API.

tools/e2e.py builds the page and starts Better Auth (with the page, on one origin) and the API
(JWKS mode, CORS for that origin) on another; tests/frontend/e2e.mjs drives the browser and
reports what it saw. One run (about 40 s) serves every test here; `python -m tools.e2e` runs
the same thing alone. Screenshots land in reports/e2e/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools import e2e

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    reason = e2e.unavailable_reason()
    if reason is not None:
        pytest.skip(f"SKIPPED the browser end-to-end test: {reason}")
    result = e2e.run()
    if "error" in result:
        logs = json.dumps(result.get("logs", {}), indent=1)[-6000:]
        pytest.fail(f"the browser run failed: {result['error']}\n{result['driverStderr']}\n{logs}")
    return result


def api_calls(report: dict[str, Any], who: str | None = None) -> list[dict[str, Any]]:
    api = report["config"]["apiUrl"]
    return [e for e in report["exchanges"] if e["url"].startswith(api) and who in (None, e["who"])]


def test_users_sign_up_through_better_auth_and_see_only_their_own_tasks(
    report: dict[str, Any],
) -> None:
    steps = report["steps"]
    assert steps["aliceSignedUp"]["summary"] == "0 tasks, none shown"
    assert steps["aliceSignedUp"]["who"].startswith("Alice <alice-")
    assert steps["bob"]["before"] == {"summary": "0 tasks, none shown", "titles": []}
    assert steps["bob"]["after"]["titles"] == ["Bob: fix the bike"]
    assert steps["aliceAfterBob"]["summary"] == "3 tasks, showing 1-3"
    assert not any("Bob" in title for title in steps["aliceAfterBob"]["titles"])
    # Each browser called only its own user's path, and every token came from Better Auth.
    users = {}
    for who in ("alice", "alice-tab2", "bob"):
        # The page's own calls (the 403 is the cross-user probe below, made on purpose).
        calls = [e for e in api_calls(report, who) if "/tasks" in e["url"] and e["status"] != 403]
        users[who] = {e["url"].split("/")[4] for e in calls}
        assert len(users[who]) == 1, (who, users[who])
    assert users["alice"] == users["alice-tab2"] != users["bob"]
    # Bob's token on Alice's path is refused; Alice's task under Bob's path does not exist.
    cross = steps["crossUser"]
    assert cross["alicePath"] == {"status": 403, "type": "https://todo-api.dev/problems/forbidden"}
    assert cross["aliceTaskUnderBob"]["status"] == 404
    assert steps["signedOut"] is True


def test_pagination_comes_from_x_total_count_and_link(report: dict[str, Any]) -> None:
    pages = report["steps"]["pagination"]
    assert pages["firstPage"]["summary"] == "4 tasks, showing 1-3"
    assert len(pages["firstPage"]["titles"]) == 3 and pages["firstPage"]["next"] is True
    assert pages["secondPage"] == {
        "summary": "4 tasks, showing 4-4",
        "titles": ["Alice: buy milk"],
        "prev": True,
    }


def test_validation_errors_appear_beside_each_field(report: dict[str, Any]) -> None:
    validation = report["steps"]["validation"]
    assert validation["title"], "no message beside the title"
    assert "32 characters" in validation["tags"]
    assert validation["description"] == ""
    assert validation["summary"] == "4 tasks, showing 1-3"  # nothing was created


def test_complete_and_delete(report: dict[str, Any]) -> None:
    step = report["steps"]["completeAndDelete"]
    assert step["done"] == ["Alice: call the bank"]
    assert step["summary"] == "3 tasks, showing 1-3"
    assert "Alice: buy milk" not in step["titles"]


def test_an_edit_from_a_stale_tab_gets_the_412_path(report: dict[str, Any]) -> None:
    conflict = report["steps"]["conflict"]
    assert "changed elsewhere" in conflict["notice"]
    assert "Report: edited in tab 1" in conflict["notice"]
    assert conflict["keptInput"] == "Report: edited in tab 2"
    assert "Report: edited in tab 2" in conflict["after"]["tab1"]
    assert "Report: edited in tab 2" in conflict["after"]["tab2"]
    assert conflict["after"]["tab2Banner"] == ""
    puts = [e["status"] for e in api_calls(report, "alice-tab2") if e["method"] == "PUT"]
    assert puts[-2:] == [412, 200] or puts[-3:] == [412, 401, 200], puts


def test_an_expired_token_is_renewed_without_the_user_noticing(report: dict[str, Any]) -> None:
    renewal = report["steps"]["renewal"]
    calls = [
        (e["method"], e["status"], "/api/auth/token" in e["url"]) for e in renewal["exchanges"]
    ]
    assert calls[:3] == [("GET", 401, False), ("GET", 200, True), ("GET", 200, False)], calls
    before, after = renewal["tokenFetches"]
    assert after == before + 1
    assert renewal["banner"] == "" and renewal["summary"] == "3 tasks, showing 1-3"
    visible_errors = [e for e in report["consoleErrors"] if e["who"] != "outsider"]
    assert visible_errors == []


def test_cors_preflights_and_exposed_headers_as_the_browser_enforces_them(
    report: dict[str, Any],
) -> None:
    page_origin = report["config"]["pageUrl"].split("/?")[0]
    preflights = [p for p in report["preflights"] if p["who"] != "outsider"]
    methods = {p["headers"]["Access-Control-Request-Method"] for p in preflights}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    for preflight in preflights:
        assert preflight["status"] == 200, preflight
        assert preflight["responseHeaders"]["access-control-allow-origin"] == page_origin
        allowed = preflight["responseHeaders"]["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "if-match", "idempotency-key"} <= {
            h.strip() for h in allowed.split(",")
        }
    # Script can read the headers the API exposes, and no others (Date is not exposed).
    visible = set(report["steps"]["visibleHeaders"])
    assert {"x-total-count", "link", "etag", "api-version", "x-request-id"} <= visible
    assert "date" not in visible
    cors = report["steps"]["cors"]
    assert cors["allowedOrigin"]["simple"]["status"] == 200
    assert cors["allowedOrigin"]["withToken"] == {"ok": True, "status": 200, "total": "3"}
    # From an origin not in CORS_ORIGINS the browser refuses both, though the API answered.
    assert cors["foreignOrigin"]["simple"]["ok"] is False
    assert cors["foreignOrigin"]["withToken"]["ok"] is False
    refused = [p for p in report["preflights"] if p["who"] == "outsider"]
    assert refused and "access-control-allow-origin" not in refused[0]["responseHeaders"]


def test_screenshots_are_saved(report: dict[str, Any]) -> None:
    names = [path.rsplit("/", 1)[1] for path in report["screenshots"]]
    assert names == [
        "01-signed-out.png",
        "02-alice-page-2.png",
        "03-validation-errors.png",
        "04-bob-own-tasks.png",
        "05-conflict-in-second-tab.png",
        "06-first-tab-after-reload.png",
        "07-after-token-renewal.png",
    ]
    for path in report["screenshots"]:
        assert (e2e.REPORT_DIR / path.rsplit("/", 1)[1]).stat().st_size > 5000

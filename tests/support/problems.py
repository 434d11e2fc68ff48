"""The contract's problem+json documents, checked the same way by every suite."""

from __future__ import annotations

from typing import Any

import httpx

from generated.models import Problem

PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://todo-api.dev/problems/"
ISSUE_LOCATIONS = {"body", "query", "path", "header"}


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """The response is the contract's Problem document with this status (and type); its body."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert body["status"] == status, body
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    if slug is not None:
        assert body["type"] == PROBLEMS + slug, body
    if "x-request-id" in response.headers:
        assert body["request_id"] == response.headers["x-request-id"], body
    # A validation problem lists its issues; other 422s (a reused idempotency key) have none.
    if body["type"] == PROBLEMS + "validation-error":
        assert isinstance(body["errors"], list) and body["errors"], body
        for issue in body["errors"]:
            assert set(issue) == {"location", "field", "message", "type"}, issue
            assert issue["location"] in ISSUE_LOCATIONS, issue
            assert all(isinstance(issue[key], str) for key in issue), issue
            assert issue["message"] and issue["type"], issue
    return body


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    """401 problem+json with an RFC 6750 Bearer challenge naming invalid_token."""
    body = assert_problem(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge
    return body

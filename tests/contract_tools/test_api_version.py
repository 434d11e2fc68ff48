"""The served contract carries the exact info.version, and every answer says `API-Version`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from tests.support import CONTRACT, LiveServer, token_for

USER = "version-user"


@pytest.fixture(scope="module")
def version() -> str:
    return str(yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))["info"]["version"])


def test_openapi_json_is_the_contract_with_its_version(
    live_server: LiveServer, contract: dict[str, Any], version: str
) -> None:
    served = httpx.get(f"{live_server.base_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json()["info"]["version"] == version
    assert served.json() == contract
    assert served.headers["API-Version"] == version


def _requests(task_path: str) -> list[tuple[str, str, dict[str, Any], int]]:
    """(method, path, httpx keyword arguments, expected status): successes and every error kind."""
    auth = {"Authorization": f"Bearer {token_for(USER)}"}
    other = {"Authorization": f"Bearer {token_for('someone-else')}"}
    tasks = f"/api/{USER}/tasks"
    return [
        ("GET", "/api/health", {}, 200),
        ("GET", "/api/health/ready", {}, 200),
        ("GET", "/openapi.yaml", {}, 200),
        ("GET", "/docs", {}, 200),
        ("GET", tasks, {"headers": auth}, 200),
        ("GET", task_path, {"headers": auth}, 200),
        ("GET", task_path, {"headers": {**auth, "If-None-Match": "*"}}, 304),
        (
            "POST",
            tasks,
            {"headers": {**auth, "Content-Type": "application/json"}, "content": b"{"},
            400,
        ),
        ("GET", tasks, {}, 401),
        ("GET", tasks, {"headers": {"Authorization": "Bearer not-a-jwt"}}, 401),
        ("GET", tasks, {"headers": other}, 403),
        ("GET", f"{tasks}/999999", {"headers": auth}, 404),
        ("GET", "/no/such/path", {}, 404),
        ("PUT", tasks, {"headers": auth, "json": {"title": "x"}}, 405),
        ("PATCH", task_path, {"headers": {**auth, "If-Match": '"0"'}, "json": {"title": "y"}}, 412),
        ("POST", tasks, {"headers": auth, "json": {"title": "x" * 70_000}}, 413),
        ("POST", tasks, {"headers": {**auth, "Content-Type": "text/plain"}, "content": b"hi"}, 415),
        ("GET", tasks, {"headers": auth, "params": {"limit": "0"}}, 422),
        ("DELETE", task_path, {"headers": auth}, 204),
    ]


def test_every_response_carries_api_version(live_server: LiveServer, version: str) -> None:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as client:
        created = client.post(
            f"/api/{USER}/tasks",
            json={"title": "versioned"},
            headers={"Authorization": f"Bearer {token_for(USER)}"},
        )
        assert created.status_code == 201 and created.headers["API-Version"] == version
        seen = []
        for method, path, options, status in _requests(created.headers["Location"]):
            response = client.request(method, path, **options)
            seen.append((method, path, response.status_code, response.headers.get("API-Version")))
            assert response.status_code == status, (method, path, response.text)
            assert response.headers.get("API-Version") == version, (method, path, status)
            if status >= 400:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert {status for *_, status, _ in seen} >= {
        200,
        204,
        304,
        400,
        401,
        403,
        404,
        405,
        412,
        413,
        415,
        422,
    }

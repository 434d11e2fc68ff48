"""An unexpected exception still leaves as the contract's problem, with every usual header."""

from __future__ import annotations

from pathlib import Path

import httpx

from backend.app import create_app
from backend.migrate import upgrade_to_head
from backend.settings import Settings
from tests.support import SECRET

ORIGIN = "https://app.example.com"


async def test_unexpected_error_is_a_500_problem_with_request_id_version_and_cors(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'todo.db'}"
    upgrade_to_head(url)
    settings = Settings(
        _env_file=None,
        database_url=url,
        better_auth_secret=SECRET.decode(),
        cors_origins=[ORIGIN],
        log_level="CRITICAL",
    )
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", boom)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(
                "/boom", headers={"Origin": ORIGIN, "X-Request-ID": "trace-123"}
            )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "trace-123"
    assert response.headers["api-version"] == app.version
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert body["status"] == 500 and body["request_id"] == "trace-123"
    assert "secret internal detail" not in response.text

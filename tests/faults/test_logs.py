"""Structured logs of a real server: one JSON object per line, request ids, never a credential."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support import (
    ISSUER,
    SECRET,
    LiveServer,
    User,
    assert_problem,
    claims,
    ed25519_key,
    free_port,
    iter_lines,
    running_server,
    server_env,
    token_for,
)

TASKS = "/api/{user_id}/tasks"
TASK = "/api/{user_id}/tasks/{task_id}"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("logs")
    with running_server(server_env(f"sqlite:///{workdir / 'todo.db'}"), workdir) as live:
        yield live


def _entries(server: LiveServer) -> list[dict[str, Any]]:
    """Every line the server wrote; each must be one JSON object."""
    entries = []
    for line in iter_lines(server.log()):
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return entries


def _access(server: LiveServer, request_id: str) -> dict[str, Any]:
    """The access-log entry of one request (the line is written just after the response)."""
    deadline = time.monotonic() + 5
    while True:
        found = [
            e
            for e in _entries(server)
            if e.get("logger") == "todo_api.access" and e.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(found) == 1, f"{len(found)} access-log lines for {request_id}"
    return found[0]


def _check_entry(
    entry: dict[str, Any], method: str, path: str, status: int, user_id: str | None
) -> None:
    assert (entry["method"], entry["path"], entry["status"], entry["user_id"]) == (
        method,
        path,
        status,
        user_id,
    ), entry
    assert isinstance(entry["latency_ms"], int | float) and entry["latency_ms"] >= 0
    assert entry["level"] == "info" and entry["time"]


async def test_access_log_carries_the_request_context(server: LiveServer, alice: User) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        created = await http.post(
            alice.tasks,
            json={"title": "Logged"},
            headers={**alice.headers, "X-Request-ID": "req-create-1"},
        )
        assert created.status_code == 201 and created.headers["x-request-id"] == "req-create-1"
        task_id = created.json()["id"]
        listed = await http.get(
            alice.tasks, headers={**alice.headers, "X-Request-ID": "req.list:2"}
        )
        assert listed.headers["x-request-id"] == "req.list:2"
        missing = await http.get(
            alice.task(task_id + 1000), headers={**alice.headers, "X-Request-ID": "req-missing-3"}
        )
        assert assert_problem(missing, 404, "not-found")["request_id"] == "req-missing-3"
        unmatched = await http.get("/no/such/route", headers={"X-Request-ID": "req-unmatched-4"})
        assert unmatched.status_code == 404
    _check_entry(_access(server, "req-create-1"), "POST", TASKS, 201, alice.id)
    _check_entry(_access(server, "req.list:2"), "GET", TASKS, 200, alice.id)
    _check_entry(_access(server, "req-missing-3"), "GET", TASK, 404, alice.id)
    _check_entry(_access(server, "req-unmatched-4"), "GET", "<unmatched>", 404, None)


@pytest.mark.parametrize(
    "sent",
    [None, "", "has space", "x" * 129, "semi;colon", "<script>"],
    ids=["absent", "empty", "space", "too-long", "semicolon", "markup"],
)
async def test_missing_or_invalid_request_id_is_replaced(
    server: LiveServer, alice: User, sent: str | None
) -> None:
    headers = dict(alice.headers)
    if sent is not None:
        headers["X-Request-ID"] = sent
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get(alice.task(999_999), headers=headers)
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.match(request_id), request_id
    assert assert_problem(response, 404, "not-found")["request_id"] == request_id
    _check_entry(_access(server, request_id), "GET", TASK, 404, alice.id)
    if sent:
        assert sent not in server.log(), "an invalid request id was written to the log"


async def test_no_token_or_secret_is_ever_logged(server: LiveServer, alice: User) -> None:
    now = int(time.time())
    expired = jwt.encode({"sub": alice.id, "iat": now - 7200, "exp": now - 3600}, SECRET, "HS256")
    forged = token_for(alice.id, secret=b"another-secret-of-sufficient-length-0123")
    garbage = "not.a.jwt-at-all"
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ok = await http.post(
            alice.tasks, json={"title": "t"}, headers={**alice.headers, "X-Request-ID": "tok-ok"}
        )
        assert ok.status_code == 201
        for n, token in enumerate((expired, forged, garbage)):
            denied = await http.get(
                alice.tasks,
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": f"tok-bad-{n}"},
            )
            assert_problem(denied, 401, "unauthorized")
        # Also a token in places where it does not belong.
        await http.get(f"{alice.tasks}?token={alice.token}", headers={"X-Request-ID": "tok-q"})
        too_large = await http.post(
            alice.tasks,
            content=b"{" + b" " * 70_000 + b"}",
            headers={
                **alice.headers,
                "Content-Type": "application/json",
                "X-Request-ID": "tok-413",
            },
        )
        assert too_large.status_code == 413
    _check_entry(_access(server, "tok-ok"), "POST", TASKS, 201, alice.id)
    for n in range(3):
        _check_entry(_access(server, f"tok-bad-{n}"), "GET", TASKS, 401, None)
    _check_entry(_access(server, "tok-413"), "POST", "<unmatched>", 413, None)
    log = server.log()
    for secret in (alice.token, expired, forged, garbage, SECRET.decode(), "Bearer"):
        assert secret not in log, "a credential appears in the log"
    # Nor any part of a token (a JWT's signature is its last segment).
    for token in (alice.token, expired, forged):
        assert token.rsplit(".", 1)[1] not in log
    assert "\x1b[" not in log, "terminal colour codes in a machine-readable log"


async def test_every_worker_process_writes_json_access_logs(tmp_path: Path, alice: User) -> None:
    env = server_env(f"sqlite:///{tmp_path / 'todo.db'}")
    with running_server(env, tmp_path, workers=2, timeout=60) as live:
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            for n in range(4):
                response = await http.get(
                    alice.tasks, headers={**alice.headers, "X-Request-ID": f"worker-{n}"}
                )
                assert response.status_code == 200
        for n in range(4):
            _check_entry(_access(live, f"worker-{n}"), "GET", TASKS, 200, alice.id)


def _unreachable_jwks_env(workdir: Path, log_level: str) -> dict[str, str]:
    """JWKS-only auth whose key set cannot be fetched: the verifier warns on every try."""
    return server_env(
        f"sqlite:///{workdir / 'todo.db'}",
        BETTER_AUTH_SECRET="",
        BETTER_AUTH_URL=ISSUER,
        JWT_JWKS_URL=f"http://user:pw@127.0.0.1:{free_port()}/jwks?x=1",
        JWKS_REFETCH_COOLDOWN_SECONDS="0",
        JWKS_TIMEOUT_SECONDS="1",
        LOG_LEVEL=log_level,
    )


async def _request_needing_the_key_set(server: LiveServer) -> None:
    token = ed25519_key("never-published").sign(claims("alice", iss=ISSUER, aud=ISSUER))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.get(
            "/api/alice/tasks",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "jwks-down"},
        )
    assert response.status_code in (401, 503), response.text


async def test_warnings_from_any_module_are_json_lines_at_the_log_level(tmp_path: Path) -> None:
    with running_server(_unreachable_jwks_env(tmp_path, "INFO"), tmp_path) as server:
        await _request_needing_the_key_set(server)
        _access(server, "jwks-down")  # the request's own line is written
    entries = _entries(server)  # every line the process wrote, stdout and stderr
    jwks = [e for e in entries if e["logger"] == "backend.auth.jwks"]
    assert len(jwks) >= 2 and all(e["level"] == "warning" for e in jwks), entries
    assert any(e["logger"] == "uvicorn.error" for e in entries)
    assert not any(e["logger"] == "uvicorn.access" for e in entries), "a second access log"


async def test_log_level_applies_to_every_module(tmp_path: Path) -> None:
    with running_server(_unreachable_jwks_env(tmp_path, "ERROR"), tmp_path) as server:
        await _request_needing_the_key_set(server)
    entries = _entries(server)
    assert not [e for e in entries if e["level"] in ("debug", "info", "warning")], entries

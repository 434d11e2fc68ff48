"""The production shape end to end: `todo-api serve` (TODO_ENV=production, JWKS only, CORS for
the front end) as a real process, verifying tokens against a JWKS served over real HTTP on
127.0.0.1, with requests written on the wire where the HTTP parser matters.

One server per database (SQLite file, PostgreSQL via TEST_DATABASE_URL), shared by the module.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.security.helpers import FRONTEND
from tests.support import (
    ISSUER,
    PG_SKIP_REASON,
    PROBLEM_JSON,
    JwksServer,
    LiveServer,
    SigningKey,
    claims,
    start_server,
    stop_server,
    truncate_postgres,
)


@dataclass
class Deployment:
    server: LiveServer
    jwks: JwksServer
    ed: SigningKey
    es: SigningKey
    rs: SigningKey
    outsider: SigningKey

    def token(self, sub: str, key: SigningKey | None = None) -> str:
        return (key or self.ed).sign(claims(sub, iss=ISSUER, aud=ISSUER))

    def bearer(self, sub: str, key: SigningKey | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, key)}"}

    def url(self, path: str) -> str:
        return self.server.base_url + path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_postgres: str | None,
    ed_key: SigningKey,
    es_key: SigningKey,
    rs_key: SigningKey,
    outsider_key: SigningKey,
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp(f"live-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite:///{workdir / 'todo.db'}"
    else:
        if migrated_postgres is None:
            pytest.skip(PG_SKIP_REASON)
        truncate_postgres(migrated_postgres)
        database_url = migrated_postgres
    jwks = JwksServer(keys=[ed_key.jwk, es_key.jwk, rs_key.jwk])
    jwks.start()
    env = {
        "TODO_ENV": "production",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": "",
        "BETTER_AUTH_URL": ISSUER,
        "JWT_JWKS_URL": jwks.url,
        "JWT_ISSUER": "",
        "JWT_AUDIENCE": "",
        "JWKS_REFETCH_COOLDOWN_SECONDS": "0",
        "JWKS_TIMEOUT_SECONDS": "2",
        "CORS_ORIGINS": FRONTEND,
        "LOG_LEVEL": "INFO",  # access log on: the token-in-log check needs lines to read
    }
    server = start_server(env, workdir)
    try:
        yield Deployment(server, jwks, ed_key, es_key, rs_key, outsider_key)
    finally:
        code = stop_server(server)
        jwks.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert code == 0, server.log()


def raw_request(base_url: str, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (request line + header lines, CRLF-joined by us) byte for byte."""
    parts = urlsplit(base_url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    message = head.replace("\n", "\r\n") + "\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(message.encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    header_block, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("key_name", ["ed", "es", "rs"])
def test_jwks_signed_tokens_work_end_to_end(deployment: Deployment, key_name: str) -> None:
    """Threat (availability) and isolation over real HTTP: an EdDSA/ES256/RS256 token from
    the issuer's JWKS works for its own subject only (403 on another path, 404 for another
    user's task id)."""
    key = {"ed": deployment.ed, "es": deployment.es, "rs": deployment.rs}[key_name]
    owner, intruder = f"live_{key_name}", f"intruder_{key_name}"
    with httpx.Client(timeout=10) as http:
        created = http.post(
            deployment.url(f"/api/{owner}/tasks"),
            json={"title": key.alg},
            headers=deployment.bearer(owner, key),
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        listed = http.get(
            deployment.url(f"/api/{owner}/tasks"), headers=deployment.bearer(owner, key)
        )
        assert [t["id"] for t in listed.json()] == [task_id]
        other_path = http.get(
            deployment.url(f"/api/{owner}/tasks"), headers=deployment.bearer(intruder)
        )
        other_id = http.get(
            deployment.url(f"/api/{intruder}/tasks/{task_id}"), headers=deployment.bearer(intruder)
        )
    assert (other_path.status_code, other_id.status_code) == (403, 404)
    for response in (other_path, other_id):
        assert response.headers["content-type"] == PROBLEM_JSON
        assert key.alg not in response.text


@pytest.mark.parametrize(
    ("name", "authorization_lines", "status"),
    [
        ("lowercase-scheme", ["Authorization: bearer {alice}"], 200),
        ("ows-around-value", ["Authorization: \t  Bearer {alice}  \t"], 200),
        ("several-spaces", ["Authorization: Bearer    {alice}"], 200),
        ("two-headers", ["Authorization: Bearer {alice}", "Authorization: Bearer {alice}"], 401),
        ("two-users", ["Authorization: Bearer {bob}", "Authorization: Bearer {alice}"], 401),
        ("lowercase-name-dup", ["authorization: Bearer {alice}", "AUTHORIZATION: Bearer x"], 401),
        ("comma-joined", ["Authorization: Bearer {bob}, Bearer {alice}"], 401),
        ("basic", ["Authorization: Basic YWxpY2U6cGFzc3dvcmQ="], 401),
        ("missing", [], 401),
    ],
)
def test_authorization_header_on_the_wire(
    deployment: Deployment, name: str, authorization_lines: list[str], status: int
) -> None:
    """Threat: what the HTTP parser does before our code sees the header (joining duplicates,
    trimming whitespace) changes which credential is checked. Raw bytes on a socket."""
    tokens = {"alice": deployment.token("alice"), "bob": deployment.token("bob")}
    lines = [line.format(**tokens) for line in authorization_lines]
    head = "\n".join(
        ["GET /api/alice/tasks HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *lines]
    )
    code, headers, body = raw_request(deployment.server.base_url, head)
    assert code == status, body
    if status == 401:
        assert headers["content-type"] == PROBLEM_JSON
        assert headers["www-authenticate"].startswith("Bearer ")
        assert 'error="invalid_token"' in headers["www-authenticate"]


def test_cors_preflight_over_real_http(deployment: Deployment) -> None:
    """Threat (availability): CORS_ORIGINS read from the environment by the real server; the
    front end's preflight passes and a foreign origin's does not."""
    request_headers = "authorization, content-type, if-match, idempotency-key"
    with httpx.Client(timeout=10) as http:
        allowed = http.options(
            deployment.url("/api/alice/tasks"),
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": request_headers,
            },
        )
        foreign = http.options(
            deployment.url("/api/alice/tasks"),
            headers={
                "Origin": "https://evil.example.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": request_headers,
            },
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == FRONTEND
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers


def test_jwks_down_with_unknown_kid_is_503(deployment: Deployment) -> None:
    """Threat: the issuer's key server goes down while a token with a new kid arrives. The
    server neither accepts it unverified nor crashes: 503 problem+json with Retry-After, CORS
    headers included so the front end can read it; cached keys keep working."""
    unknown = deployment.bearer("alice", deployment.outsider)
    deployment.jwks.stop()
    try:
        with httpx.Client(timeout=10) as http:
            response = http.get(
                deployment.url("/api/alice/tasks"), headers={"Origin": FRONTEND, **unknown}
            )
            cached = http.get(
                deployment.url("/api/alice/tasks"), headers=deployment.bearer("alice")
            )
    finally:
        deployment.jwks.start()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert cached.status_code == 200
    assert "Traceback" not in deployment.server.log()


def test_server_log_holds_no_tokens(deployment: Deployment) -> None:
    """Threat: bearer tokens written to logs (a log reader becomes any user)."""
    token = deployment.token("alice")
    with httpx.Client(timeout=10) as http:
        http.get(deployment.url("/api/alice/tasks"), headers={"Authorization": f"Bearer {token}"})
        http.get(deployment.url("/api/alice/tasks"), headers={"Authorization": f"Bearer {token}x"})
    log = deployment.server.log()
    assert '"status":401' in log.replace(" ", "")  # the access log did record these requests
    assert token not in log
    assert token.split(".")[2] not in log

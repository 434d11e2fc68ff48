"""No redirect is built from the request's Host header.

Threat: Starlette answers a path with an extra trailing slash with a 307 whose Location is
made from the Host header, before authentication; behind a cache or a proxy that forwards Host,
a forged Host turns our URL into a redirect to an attacker's site. The contract has no
trailing-slash paths: such a path is a 404 problem. Tested on a real server over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import LiveServer, User, assert_problem, running_server, server_env

FORGED_HOST = "evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("slash")
    env = server_env(f"sqlite:///{workdir / 'todo.db'}", LOG_LEVEL="WARNING")
    with running_server(env, workdir) as live:
        yield live


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/alice/tasks/"),
        ("POST", "/api/alice/tasks/"),
        ("GET", "/api/alice/tasks/1/"),
        ("PATCH", "/api/alice/tasks/1/complete/"),
        ("GET", "/api/health/"),
        ("GET", "/docs/"),
    ],
)
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "alice"])
def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_host_header(
    server: LiveServer, alice: User, method: str, path: str, signed_in: bool
) -> None:
    headers = {"Host": FORGED_HOST, **(alice.headers if signed_in else {})}
    with httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=10) as http:
        response = http.request(method, path, headers=headers)
    assert "location" not in response.headers, response.headers
    assert FORGED_HOST not in response.text
    assert assert_problem(response, 404)["instance"] == path

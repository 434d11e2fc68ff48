"""What the contract fuzzer (python -m tools.fuzz) found, each pinned down by name.

Each finding was a place where the server and the approved contract disagreed; the fix is
named in the test's docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.support import User, assert_problem, load_contract

CONTRACT = load_contract()
SCHEMAS = CONTRACT["components"]["schemas"]
URI_REFERENCE = jsonschema_rs.validator_for(
    {"type": "string", "format": "uri-reference"}, validate_formats=True
)


def contract_accepts(schema_name: str, value: Any) -> bool:
    """What the contract says, read as clients and schemathesis read it (ECMA-262 regexes)."""
    schema = {**SCHEMAS[schema_name], "components": CONTRACT["components"]}
    return bool(jsonschema_rs.validator_for(schema).is_valid(value))


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", "2026-12-01 17:00Z", "2026-12-01T17:00:00+0100"]
)
async def test_numeric_or_non_rfc3339_due_before_is_422(
    client: httpx.AsyncClient, alice: User, value: str
) -> None:
    """`due_before=0.5` answered 200: pydantic's AwareDatetime reads numbers as Unix time.

    Fix: generated routers and models type `format: date-time` as RFC3339DateTime.
    """
    response = await client.get(alice.tasks, params={"due_before": value}, headers=alice.headers)
    body = assert_problem(response, 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("query", "due_before")]


@pytest.mark.parametrize("value", [0.5, 1700000000, "1700000000", "2026-12-01T17:00Z"])
async def test_numeric_or_non_rfc3339_due_at_is_422(
    client: httpx.AsyncClient, alice: User, value: Any
) -> None:
    """The same for bodies: a number as `due_at` was stored as a 1970 or 2023 instant."""
    response = await client.post(
        alice.tasks, json={"title": "t", "due_at": value}, headers=alice.headers
    )
    body = assert_problem(response, 422)
    assert [(e["location"], e["field"]) for e in body["errors"]] == [("body", "due_at")]


async def test_rfc3339_due_at_with_offset_is_still_accepted(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        alice.tasks,
        json={"title": "t", "due_at": "2026-12-01t18:00:00.5+01:00"},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    due_at = datetime.fromisoformat(response.json()["due_at"])
    assert due_at == datetime(2026, 12, 1, 17, 0, 0, 500_000, tzinfo=UTC)
    assert due_at.utcoffset() is not None and not due_at.utcoffset()


@pytest.mark.parametrize(
    ("title", "tag"),
    [
        ("ok", "\u0085"),  # NEL: a C1 control; `\s` to Python/Rust, not to ECMA-262
        ("ok", "a\u0085"),
        ("\ufeff", "ok"),  # BOM alone: blank to ECMA-262 `\s`, not to Python/Rust
        ("ok", "\ufeffa"),
        ("ok", "\u2003a"),  # a leading em space
        ("\u0093", "ok"),  # any C1 control
    ],
)
async def test_nel_and_bom_in_title_or_tag_is_422(
    client: httpx.AsyncClient, alice: User, title: str, tag: str
) -> None:
    """A tag "\\u0085" was valid by the contract and refused by the server.

    The contract's patterns used `\\s`, which ECMA-262 (the contract's regex dialect) and the
    server's regex engine define differently. Fix: the patterns spell whitespace out and
    exclude C1 controls, as the descriptions already said; both sides now refuse these.
    """
    document = {"title": title, "tags": [tag]}
    assert not contract_accepts("TaskCreate", document)
    response = await client.post(alice.tasks, json=document, headers=alice.headers)
    assert_problem(response, 422)


@pytest.mark.parametrize(
    ("title", "tag"),
    [("a\u00a0b", "caf\u00e9 au lait"), ("\u00e9", "x\u2003y"), (" padded title ", "a\u3000b")],
)
async def test_inner_spaces_in_title_or_tag_are_accepted_by_both(
    client: httpx.AsyncClient, alice: User, title: str, tag: str
) -> None:
    document = {"title": title, "tags": [tag]}
    assert contract_accepts("TaskCreate", document)
    response = await client.post(alice.tasks, json=document, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert (response.json()["title"], response.json()["tags"]) == (title, [tag])


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/{user}/tasks", "GET, POST"),
        ("/api/{user}/tasks/1", "GET, PUT, PATCH, DELETE"),
        ("/api/{user}/tasks/1/complete", "PATCH"),
    ],
)
async def test_405_allow_lists_every_method_of_the_path(
    client: httpx.AsyncClient, alice: User, path: str, allow: str
) -> None:
    """OPTIONS on /tasks answered `Allow: GET` (POST missing): Starlette names the methods of
    the first route that matched the path only. Fix: the 405 handler lists the contract's.
    """
    response = await client.options(path.format(user=alice.id), headers=alice.headers)
    assert_problem(response, 405)
    assert response.headers["allow"] == allow


async def test_problem_instance_is_a_percent_encoded_uri_reference(
    client: httpx.AsyncClient, alice: User
) -> None:
    """`instance` held the decoded path (`/tasks/v\\x93J.../complete`), not a URI reference.

    Fix: problem documents percent-encode the path they name.
    """
    raw = "/api/" + alice.id + "/tasks/v%C2%93J%F0%BF%A5%A9%20%25/complete"
    response = await client.patch(raw, json={"completed": False})
    body = assert_problem(response, 401)
    assert body["instance"] == raw
    assert URI_REFERENCE.is_valid(body["instance"])

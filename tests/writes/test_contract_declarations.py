"""The contract declares every header and status the write-safety features send.

The server's behaviour is proven by the other tests here; this one makes sure a client reading
specs/api/openapi.yaml learns about it (a header the contract does not name is invisible to
generated clients and to schemathesis).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Operation, operations, user_operations

# Derived from the contract, so an operation added to it is held to the same rules.
USER_OPERATIONS = user_operations()
WITH_BODY = [name for name, op in USER_OPERATIONS.items() if op.body is not None]
CONDITIONAL_WRITES = [name for name, op in USER_OPERATIONS.items() if op.on_task and op.writes]
CACHEABLE_READS = [name for name, op in USER_OPERATIONS.items() if not op.writes]
# Everything on a user's data reads the database, and so does the readiness probe.
DATABASE_BACKED = [
    *USER_OPERATIONS,
    *(n for n, op in operations().items() if op.path.endswith("/ready")),
]


def _operation(operation_id: str) -> Operation:
    return operations()[operation_id]


def _response(operation_id: str, status: str) -> dict[str, Any]:
    responses = _operation(operation_id).responses
    assert status in responses, f"{operation_id} does not declare {status}"
    return dict(responses[status])


def _headers(operation_id: str, status: str) -> set[str]:
    return {name.lower() for name in _response(operation_id, status).get("headers", {})}


def _header_parameters(operation_id: str) -> set[str]:
    parameters = _operation(operation_id).parameters
    return {p["name"].lower() for p in parameters if p["in"] == "header"}


def test_create_declares_idempotency() -> None:
    assert "idempotency-key" in _header_parameters("createTask")
    assert {"etag", "location"} <= _headers("createTask", "201")
    assert "idempotency-key-reused" in _response("createTask", "422")["description"]


@pytest.mark.parametrize("operation_id", CONDITIONAL_WRITES)
def test_conditional_writes_declare_if_match_and_412(operation_id: str) -> None:
    assert "if-match" in _header_parameters(operation_id)
    assert "etag" in _headers(operation_id, "412")
    success = str(_operation(operation_id).success)
    if success != "204":
        assert "etag" in _headers(operation_id, success)


@pytest.mark.parametrize("operation_id", CACHEABLE_READS)
def test_reads_declare_if_none_match_and_304(operation_id: str) -> None:
    assert "if-none-match" in _header_parameters(operation_id)
    assert "etag" in _headers(operation_id, "200")
    not_modified = _response(operation_id, "304")
    assert "content" not in not_modified, "a 304 has no body"
    assert "etag" in _headers(operation_id, "304")


@pytest.mark.parametrize("operation_id", WITH_BODY)
def test_operations_with_a_body_declare_413(operation_id: str) -> None:
    assert _response(operation_id, "413")["content"]["application/problem+json"]


@pytest.mark.parametrize("operation_id", DATABASE_BACKED)
def test_database_backed_operations_declare_503_with_retry_after(operation_id: str) -> None:
    assert "retry-after" in _headers(operation_id, "503")


@pytest.mark.parametrize("operation_id", list(USER_OPERATIONS))
def test_every_task_response_declares_the_request_id(operation_id: str) -> None:
    for status in _operation(operation_id).responses:
        assert "x-request-id" in _headers(operation_id, status), f"{operation_id} {status}"

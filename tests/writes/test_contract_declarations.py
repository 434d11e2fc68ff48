"""The contract declares every header and status the write-safety features send.

The server's behaviour is proven by the other tests here; this one makes sure a client reading
specs/api/openapi.yaml learns about it (a header the contract does not name is invisible to
generated clients and to schemathesis).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support import ROOT

SPEC = yaml.safe_load((ROOT / "specs/api/openapi.yaml").read_text())
WITH_BODY = ["createTask", "replaceTask", "updateTask", "completeTask"]
CONDITIONAL_WRITES = ["replaceTask", "updateTask", "deleteTask", "completeTask"]
CACHEABLE_READS = ["getTask", "listTasks"]
DATABASE_BACKED = ["listTasks", "createTask", "getTask", *CONDITIONAL_WRITES, "getReadiness"]


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operation(operation_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The operation and its parameters (path-level ones included)."""
    for item in SPEC["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                shared = [_resolve(p) for p in item.get("parameters", [])]
                own = [_resolve(p) for p in operation.get("parameters", [])]
                return operation, shared + own
    raise AssertionError(f"no operation {operation_id}")


def _response(operation_id: str, status: str) -> dict[str, Any]:
    operation, _ = _operation(operation_id)
    assert status in operation["responses"], f"{operation_id} does not declare {status}"
    response: dict[str, Any] = _resolve(operation["responses"][status])
    return response


def _headers(operation_id: str, status: str) -> set[str]:
    return {name.lower() for name in _response(operation_id, status).get("headers", {})}


def _header_parameters(operation_id: str) -> set[str]:
    _, parameters = _operation(operation_id)
    return {p["name"].lower() for p in parameters if p["in"] == "header"}


def test_create_declares_idempotency() -> None:
    assert "idempotency-key" in _header_parameters("createTask")
    assert {"etag", "location"} <= _headers("createTask", "201")
    assert "idempotency-key-reused" in _response("createTask", "422")["description"]


@pytest.mark.parametrize("operation_id", CONDITIONAL_WRITES)
def test_conditional_writes_declare_if_match_and_412(operation_id: str) -> None:
    assert "if-match" in _header_parameters(operation_id)
    assert "etag" in _headers(operation_id, "412")
    success = "204" if operation_id == "deleteTask" else "200"
    if success == "200":
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


@pytest.mark.parametrize("operation_id", [*CACHEABLE_READS, *WITH_BODY, "deleteTask"])
def test_every_task_response_declares_the_request_id(operation_id: str) -> None:
    operation, _ = _operation(operation_id)
    for status in operation["responses"]:
        assert "x-request-id" in _headers(operation_id, status), f"{operation_id} {status}"

"""The contract's operations as data, read from specs/api/openapi.yaml.

Suites that claim to cover every operation parametrize over `operations()`, so an operation added
to the contract is covered without editing a list. Each operation carries a valid example request
built from the contract's own parameter and request-body examples.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.identity import ROOT

# A copy of the contract can stand in for it (the test that proves the suites follow it does).
CONTRACT_ENV = "TODO_API_TEST_CONTRACT"
CONTRACT = Path(os.environ.get(CONTRACT_ENV) or ROOT / "specs" / "api" / "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PLACEHOLDER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    """One operationId: its method, path template, parameters, example body and responses."""

    operation_id: str
    method: str
    path: str
    parameters: tuple[Mapping[str, Any], ...]
    body: Any
    responses: Mapping[str, Mapping[str, Any]] = field(repr=False)
    secured: bool = True

    @property
    def path_names(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))

    @property
    def user_scoped(self) -> bool:
        """Under /api/{user_id}/...: the path names the user whose data it is."""
        return "user_id" in self.path_names

    @property
    def on_task(self) -> bool:
        """Addresses one task by its id."""
        return "task_id" in self.path_names

    @property
    def writes(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    @property
    def success(self) -> int:
        """The contract's success status (the lowest 2xx it declares)."""
        return min(int(status) for status in self.responses if status.startswith("2"))

    def parameter(self, location: str, name: str) -> Mapping[str, Any] | None:
        for parameter in self.parameters:
            if parameter["in"] == location and parameter["name"].lower() == name.lower():
                return parameter
        return None

    def example(self, location: str, name: str) -> Any:
        """The contract's example for a parameter (its schema's, if the parameter has none)."""
        parameter = self.parameter(location, name)
        if parameter is None:
            raise KeyError(f"{self.operation_id} has no {location} parameter {name}")
        if "example" in parameter:
            return parameter["example"]
        examples = parameter.get("examples") or {}
        if examples:
            return next(iter(examples.values()))["value"]
        schema = parameter.get("schema", {})
        if "example" in schema:
            return schema["example"]
        if schema.get("examples"):
            return schema["examples"][0]
        raise KeyError(f"{self.operation_id}: {location} parameter {name} has no example")

    def url(self, **path_values: object) -> str:
        """The path with `path_values` filled in, and the contract's examples elsewhere."""

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            value = path_values[name] if name in path_values else self.example("path", name)
            return str(value)

        return _PLACEHOLDER.sub(fill, self.path)

    def query(self) -> dict[str, Any]:
        """The required query parameters, with their examples (a minimal valid request)."""
        return {
            parameter["name"]: self.example("query", parameter["name"])
            for parameter in self.parameters
            if parameter["in"] == "query" and parameter.get("required", False)
        }

    async def call(
        self,
        client: httpx.AsyncClient,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        **path_values: object,
    ) -> httpx.Response:
        """Send the example request (or `json` instead of the example body)."""
        return await client.request(
            self.method,
            self.url(**path_values),
            params=self.query(),
            json=self.body if json is None else json,
            headers=dict(headers or {}),
        )


def load_contract(path: Path = CONTRACT) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow local `$ref`s until a node that is not a reference."""
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _example_body(document: Mapping[str, Any], operation: Mapping[str, Any]) -> Any:
    request_body = resolve(document, operation.get("requestBody"))
    if not request_body:
        return None
    media = request_body.get("content", {}).get("application/json", {})
    if "example" in media:
        return media["example"]
    if media.get("examples"):
        return resolve(document, next(iter(media["examples"].values())))["value"]
    schema = resolve(document, media.get("schema", {}))
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    raise KeyError(f"{operation['operationId']}: the request body has no example")


def operations_of(document: Mapping[str, Any]) -> dict[str, Operation]:
    """Every operation of a contract document, by operationId, in contract order."""
    secured_by_default = bool(document.get("security"))
    found: dict[str, Operation] = {}
    for path, item in document.get("paths", {}).items():
        shared = [resolve(document, p) for p in item.get("parameters", [])]
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            own = [resolve(document, p) for p in operation.get("parameters", [])]
            own_keys = {(p["in"], p["name"]) for p in own}
            parameters = [p for p in shared if (p["in"], p["name"]) not in own_keys] + own
            security = operation.get("security")
            found[operation["operationId"]] = Operation(
                operation_id=operation["operationId"],
                method=method.upper(),
                path=path,
                parameters=tuple(parameters),
                body=_example_body(document, operation),
                responses={
                    status: resolve(document, response)
                    for status, response in operation.get("responses", {}).items()
                },
                secured=bool(security) if security is not None else secured_by_default,
            )
    return found


@functools.cache
def _cached(path: Path) -> dict[str, Operation]:
    return operations_of(load_contract(path))


def operations(path: Path = CONTRACT) -> dict[str, Operation]:
    """`operations_of` the contract file (specs/api/openapi.yaml unless told otherwise)."""
    return dict(_cached(path))


def user_operations(path: Path = CONTRACT) -> dict[str, Operation]:
    """The operations on a user's data (under /api/{user_id}/): the ones isolation covers."""
    return {name: op for name, op in operations(path).items() if op.user_scoped}


def write_contract_with_archive_operation(target: Path) -> Path:
    """A copy of the contract with one more operation (`archiveTask`) and no handler for it."""
    document = load_contract()
    document["paths"]["/api/{user_id}/tasks/{task_id}/archive"] = {
        "parameters": document["paths"]["/api/{user_id}/tasks/{task_id}"]["parameters"],
        "post": {
            "operationId": "archiveTask",
            "tags": ["tasks"],
            "summary": "Archive a task",
            "responses": {"204": {"description": "archived"}},
        },
    }
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target

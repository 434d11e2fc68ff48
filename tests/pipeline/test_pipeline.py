"""The contract-first pipeline: the contract drives the routes, the handlers and the drift gate."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute

from backend.app import IMPLEMENTATIONS, MissingHandlerError, check_implementations
from backend.contract import CONTRACT_PATH
from backend.handlers.tasks import TaskHandlers
from generated.handlers import TasksHandlers
from tests.support import write_contract_with_archive_operation
from tools import regen

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def contract_operations() -> set[tuple[str, str]]:
    document = yaml.safe_load(CONTRACT_PATH.read_text())
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included-router wrapper
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def served_api_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in _api_routes(app.routes)
        if route.path.startswith("/api")
        for method in route.methods or ()
    }


async def test_every_contract_operation_is_served_and_nothing_else(app: FastAPI) -> None:
    assert served_api_operations(app) == contract_operations()


def test_each_operation_reads_exactly_the_contract_parameters(app: FastAPI) -> None:
    """Each route declares the contract's parameters, each in its location, and its body."""
    document = yaml.safe_load(CONTRACT_PATH.read_text())

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = document
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node

    routes = {route.operation_id: route for route in _api_routes(app.routes)}
    checked = 0
    for item in document["paths"].values():
        for method in HTTP_METHODS & set(item):
            operation = item[method]
            expected = {
                (param["name"], param["in"])
                for param in map(
                    resolve, [*item.get("parameters", []), *operation.get("parameters", [])]
                )
                if param.get("x-handled-by") != "middleware"
            }
            dependant = routes[operation["operationId"]].dependant
            declared = {
                (field.alias, location)
                for location, fields in (
                    ("path", dependant.path_params),
                    ("query", dependant.query_params),
                    ("header", dependant.header_params),
                )
                for field in fields
            }
            assert declared == expected, operation["operationId"]
            assert bool(dependant.body_params) == ("requestBody" in operation)
            checked += 1
    assert checked >= 9


async def test_served_contract_is_the_approved_file(client: httpx.AsyncClient) -> None:
    approved = CONTRACT_PATH.read_bytes()
    as_yaml = await client.get("/openapi.yaml")
    assert as_yaml.status_code == 200 and as_yaml.content == approved
    as_json = await client.get("/openapi.json")
    assert as_json.status_code == 200
    assert as_json.json() == yaml.safe_load(approved)


async def test_docs_page_loads_assets_from_this_server_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"):
        assert asset in page.text
        assert (await client.get(asset)).status_code == 200


def test_drift_gate_passes_on_the_committed_tree() -> None:
    assert regen.main(["--check"]) == 0


def test_drift_gate_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = tmp_path / "fresh"
    regen.generate_into(fresh)
    stale = tmp_path / "stale"
    shutil.copytree(regen.GENERATED, stale, ignore=shutil.ignore_patterns("__pycache__"))
    (stale / "routes.py").write_text((stale / "routes.py").read_text() + "\n# hand edit\n")
    (stale / "extra.py").write_text("")
    problems = regen.drift(fresh, stale)
    assert "differs: generated/routes.py" in problems
    assert "not produced by the contract: generated/extra.py" in problems


def test_generation_is_deterministic(tmp_path: Path) -> None:
    regen.generate_into(tmp_path / "a")
    regen.generate_into(tmp_path / "b")
    assert regen.drift(tmp_path / "a", tmp_path / "b") == []


def test_a_new_operation_fails_start_up_naming_it(tmp_path: Path) -> None:
    """Adding an operation to the contract breaks start-up until a handler implements it."""
    contract = write_contract_with_archive_operation(tmp_path / "openapi.yaml")
    package = tmp_path / "changed_contract"
    regen.generate_into(package, contract=contract)
    sys.path.insert(0, str(tmp_path))
    try:
        handlers = importlib.import_module("changed_contract.handlers")
        with pytest.raises(MissingHandlerError, match=r"operationId 'archiveTask'.*archive_task"):
            check_implementations(
                interfaces=handlers.HANDLER_INTERFACES, operations=handlers.OPERATIONS
            )
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("changed_contract")]:
            del sys.modules[name]


def test_a_missing_handler_method_is_named() -> None:
    class Incomplete(TaskHandlers):
        delete_task = None  # type: ignore[assignment]

    class Inherited(TasksHandlers):  # the Protocol's own stubs only
        pass

    with pytest.raises(MissingHandlerError, match="operationId 'getTask'"):
        check_implementations({**IMPLEMENTATIONS, "tasks": Inherited})

    broken = {**IMPLEMENTATIONS, "tasks": Incomplete}
    with pytest.raises(MissingHandlerError, match="operationId 'deleteTask'"):
        check_implementations(broken)


def test_a_wrong_handler_signature_is_named() -> None:
    class Renamed(TaskHandlers):
        async def get_task(self, *, user_id: str, task: int, if_none_match: str | None) -> None:  # type: ignore[override]
            return None

    broken = {**IMPLEMENTATIONS, "tasks": Renamed}
    with pytest.raises(MissingHandlerError, match=r"operationId 'getTask'.*task_id"):
        check_implementations(broken)


def test_a_missing_tag_implementation_is_named() -> None:
    broken = {tag: impl for tag, impl in IMPLEMENTATIONS.items() if tag != "health"}
    with pytest.raises(MissingHandlerError, match="tag 'health'"):
        check_implementations(broken)

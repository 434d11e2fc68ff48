"""FastAPI's own dependency mechanisms reach every contract route: `dependencies=` at the app,
router and route level, and `app.dependency_overrides` on the caller."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from fastapi import Depends, FastAPI, HTTPException

from backend.app import create_app
from backend.auth import Principal
from backend.contract import CONTRACT_PATH
from backend.dependencies import caller
from backend.settings import Settings
from tests.support import User

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
TEAPOT = 418
HEALTH = frozenset({"getHealth", "getReadiness"})  # no caller: no token, no owner check


def contract_requests(user: User) -> dict[str, tuple[str, str, Any]]:
    """operationId -> (method, url, JSON body or None), read from the contract itself."""
    document = yaml.safe_load(CONTRACT_PATH.read_text())
    requests: dict[str, tuple[str, str, Any]] = {}
    for path, item in document["paths"].items():
        url = path.replace("{user_id}", user.id).replace("{task_id}", "1")
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            body = None
            if operation.get("requestBody", {}).get("required"):
                examples = operation["requestBody"]["content"]["application/json"]["examples"]
                body = next(iter(examples.values()))["value"]
            requests[operation["operationId"]] = (method.upper(), url, body)
    return requests


async def teapot() -> None:
    raise HTTPException(status_code=TEAPOT, detail="refused by a test dependency")


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def statuses(app: FastAPI, user: User, headers: Mapping[str, str]) -> dict[str, int]:
    async with serve(app) as client:
        answers = {}
        for operation_id, (method, url, body) in contract_requests(user).items():
            response = await client.request(method, url, json=body, headers=dict(headers))
            answers[operation_id] = response.status_code
        return answers


def test_the_contract_has_operations_to_check(alice: User) -> None:
    assert len(contract_requests(alice)) >= 9


async def test_app_level_dependencies_run_on_every_operation(
    settings: Settings, alice: User
) -> None:
    app = create_app(settings, dependencies=[Depends(teapot)])
    answers = await statuses(app, alice, alice.headers)
    assert answers and set(answers.values()) == {TEAPOT}, answers


async def test_router_level_dependencies_run_on_every_operation(
    settings: Settings, alice: User
) -> None:
    app = create_app(settings, router_dependencies=[Depends(teapot)])
    answers = await statuses(app, alice, alice.headers)
    assert answers and set(answers.values()) == {TEAPOT}, answers


async def test_route_level_dependencies_run_on_their_operation_only(
    settings: Settings, alice: User
) -> None:
    for operation_id in contract_requests(alice):
        options = {operation_id: {"dependencies": [Depends(teapot)]}}
        app = create_app(settings, operation_options=options)
        answers = await statuses(app, alice, alice.headers)
        assert answers.pop(operation_id) == TEAPOT
        assert TEAPOT not in answers.values(), (operation_id, answers)


@pytest.mark.parametrize("who", ["alice", "nobody"])
async def test_dependency_overrides_replace_the_caller(
    settings: Settings, alice: User, who: str
) -> None:
    """With the caller overridden, no token is needed; the owner check still applies."""
    app = create_app(settings)
    app.dependency_overrides[caller] = lambda: Principal(who, datetime.now(UTC))
    answers = await statuses(app, alice, {})
    assert answers.pop("getCurrentUser") == 200, answers
    tasks = {op: status for op, status in answers.items() if op not in HEALTH}
    assert 401 not in tasks.values(), answers
    if who == "alice":
        assert answers["listTasks"] == 200 and answers["createTask"] == 201, answers
        assert 403 not in tasks.values(), answers
    else:
        assert set(tasks.values()) == {403}, answers


def test_no_dependency_of_a_contract_route_runs_in_a_thread_pool(app: FastAPI) -> None:
    """FastAPI runs a plain `def` dependency in a worker thread: a thread hop per request."""
    from fastapi.dependencies.models import Dependant
    from fastapi.routing import APIRoute

    def calls(dependant: Dependant) -> list[Any]:
        return [
            call
            for sub in dependant.dependencies
            for call in (sub.call, *calls(sub))
            if call is not None
        ]

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        found = []
        for route in routes:
            included = getattr(route, "original_router", None)  # an included router's wrapper
            if included is not None:
                found += api_routes(included.routes)
            elif isinstance(route, APIRoute) and route.path.startswith("/api"):
                found.append(route)
        return found

    checked = 0
    for route in api_routes(app.routes):
        for call in calls(route.dependant):
            assert inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call), (
                route.operation_id,
                call,
            )
            checked += 1
    assert checked >= 9 * 2

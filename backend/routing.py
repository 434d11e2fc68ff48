"""The route class the generated operations are declared with: FastAPI's declaration, a lean call.

Generated routes take only `(request, response)` and validate their own parameters
(generated/parameters.py), so FastAPI's per-request handler has nothing left to do but cost:
it solves an empty dependency graph, re-validates the handler's return value against the
response model and then serializes it. `ContractRoute` keeps everything FastAPI derives from
the declaration (path matching, methods, status code, response model, exception handlers) and
replaces only that per-request handler: call the endpoint, serialize its return value once with
the response model's pydantic-core serializer, answer with the headers the handler set.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.status import HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.responses import RendersJson

JSON_MEDIA_TYPE = "application/json"
BODILESS_STATUSES = frozenset({HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED})
Endpoint = Callable[[Request, Response], Coroutine[Any, Any, Any]]
RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def takes_request_and_response(endpoint: Callable[..., Any]) -> bool:
    """True for the generated shape `async def op(request: Request, response: Response)`."""
    if not inspect.iscoroutinefunction(endpoint):
        return False
    parameters = list(inspect.signature(endpoint, eval_str=True).parameters.values())
    return [(p.name, p.annotation) for p in parameters] == [
        ("request", Request),
        ("response", Response),
    ]


def _headers_only_response() -> Response:
    """What FastAPI hands an endpoint as `response`: a holder for status code and headers."""
    response = Response()
    response.raw_headers = []  # not the empty body's content-length: 0
    response.status_code = None  # type: ignore[assignment]  # "not set by the handler"
    return response


class ContractRoute(APIRoute):
    """An APIRoute that serializes its endpoint's return value without validating it again.

    The value is serialized with `warnings="error"`: a handler that returns something other
    than the declared model (a dict, a wrong type) fails loudly as a 500 instead of sending an
    unchecked body. Endpoints of another shape keep FastAPI's own handler.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        if takes_request_and_response(endpoint) and self.max_body_size is None:
            # FastAPI's request_response opens two AsyncExitStacks per request for
            # dependencies with `yield`; these routes have no dependencies at all.
            self.app = contract_app(self.get_route_handler())

    def get_route_handler(self) -> RouteHandler:
        if not takes_request_and_response(self.endpoint):
            return super().get_route_handler()
        return contract_handler(self.endpoint, self.response_model, self.status_code or 200)


def contract_app(handle: RouteHandler) -> ASGIApp:
    """The route's ASGI app: the request through `handle`, errors through the app's handlers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            response = await handle(request)
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(respond, request)(scope, receive, send)

    return app


def contract_handler(endpoint: Endpoint, response_model: Any, default_status: int) -> RouteHandler:
    """The per-request handler of one generated operation."""
    to_json = None if response_model is None else TypeAdapter(response_model).dump_json

    async def handle(request: Request) -> Response:
        sent = _headers_only_response()
        content = await endpoint(request, sent)
        status = sent.status_code or default_status
        if to_json is None or status in BODILESS_STATUSES:
            response = Response(status_code=status)
        else:
            body = (
                content.render_json()
                if isinstance(content, RendersJson)
                else to_json(content, by_alias=True, warnings="error")
            )
            response = Response(body, status_code=status, media_type=JSON_MEDIA_TYPE)
        response.raw_headers.extend(sent.raw_headers)
        return response

    return handle

"""The route class the generated operations are declared with: FastAPI's declaration, a lean call.

Generated routes take only `(request, response)` and validate their own parameters
(generated/parameters.py), so FastAPI's per-request handler has nothing left to do but cost:
it solves an empty dependency graph, re-validates the handler's return value against the
response model and then serializes it. `ContractRoute` keeps everything FastAPI derives from
the declaration (path matching, methods, status code, response model, exception handlers) and
replaces only what runs per request: call the endpoint, serialize its return value once with
the response model's pydantic-core serializer, send it with the headers the handler set.
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

JSON_MEDIA_TYPE = b"application/json"
BODILESS_STATUSES = frozenset({HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED})
Endpoint = Callable[[Request, Response], Coroutine[Any, Any, Any]]


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
            self.app = contract_app(endpoint, self.response_model, self.status_code or 200)


def contract_app(endpoint: Endpoint, response_model: Any, default_status: int) -> ASGIApp:
    """The ASGI app of one generated operation; its exceptions go to the app's handlers.

    It sends the two response messages itself: FastAPI's request_response would open two
    AsyncExitStacks (for dependencies with `yield`; these routes have none) and build a
    Response object per request, only to turn it into the same two messages.
    """
    to_json = None if response_model is None else TypeAdapter(response_model).dump_json

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            declared = _headers_only_response()  # what the handler sets: status, headers
            content = await endpoint(request, declared)
            status = declared.status_code or default_status
            headers: list[tuple[bytes, bytes]] = []
            body = b""
            if status not in BODILESS_STATUSES:  # Starlette's headers, in Starlette's order
                if to_json is not None:
                    body = (
                        content.render_json()
                        if isinstance(content, RendersJson)
                        else to_json(content, by_alias=True, warnings="error")
                    )
                headers.append((b"content-length", b"%d" % len(body)))
                if to_json is not None:
                    headers.append((b"content-type", JSON_MEDIA_TYPE))
            headers += declared.raw_headers
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await wrap_app_handling_exceptions(respond, request)(scope, receive, send)

    return app

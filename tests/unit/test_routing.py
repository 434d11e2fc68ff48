"""ContractRoute: FastAPI's declaration, one serialization of the returned value, no re-check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from backend.responses import RendersJson
from backend.routing import ContractRoute, takes_request_and_response


class Item(BaseModel):
    name: str
    count: int


class RenderedItems(Sequence[Item], RendersJson):
    """A pre-rendered body; its bytes are deliberately not what pydantic would write."""

    def __len__(self) -> int:
        return 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        raise IndexError(index)

    def render_json(self) -> bytes:
        return b'[{"name":"pre-rendered","count":1}]'


class Teapot(Exception):
    pass


def _app() -> FastAPI:
    app = FastAPI()
    app.router.route_class = ContractRoute

    @app.exception_handler(Teapot)
    async def teapot(request: Request, exc: Teapot) -> Response:
        return JSONResponse({"error": "teapot"}, status_code=418)

    @app.get("/item", response_model=Item, status_code=200)
    async def get_item(request: Request, response: Response) -> Item:
        response.headers["ETag"] = '"1"'
        return Item(name=request.query_params.get("name", "milk"), count=2)

    @app.post("/items", response_model=Item, status_code=201)
    async def create_item(request: Request, response: Response) -> Item:
        if request.query_params.get("replay"):
            response.status_code = 200
        return Item(name="new", count=1)

    @app.get("/items", response_model=list[Item], status_code=200)
    async def list_items(request: Request, response: Response) -> Sequence[Item]:
        if request.query_params.get("rendered"):
            return RenderedItems()
        return [Item(name="a", count=1), Item(name="b", count=2)]

    @app.delete("/items/1", response_class=Response, status_code=204)
    async def delete_item(request: Request, response: Response) -> None:
        return None

    @app.get("/wrong", response_model=Item, status_code=200)
    async def wrong(request: Request, response: Response) -> Item:
        return {"name": "unchecked", "count": "2"}  # type: ignore[return-value]

    @app.get("/raises", response_model=Item, status_code=200)
    async def raises(request: Request, response: Response) -> Item:
        if request.query_params.get("http"):
            raise HTTPException(status_code=404, detail="gone")
        raise Teapot()

    @app.get("/fastapi-shaped")
    async def fastapi_shaped(limit: int) -> dict[str, int]:
        return {"limit": limit}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def test_model_is_serialized_with_the_declared_status_and_the_handlers_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/item", params={"name": "tea"})
    assert response.status_code == 200
    assert response.content == b'{"name":"tea","count":2}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["etag"] == '"1"'


async def test_handler_may_set_another_status(client: httpx.AsyncClient) -> None:
    assert (await client.post("/items")).status_code == 201
    assert (await client.post("/items", params={"replay": "1"})).status_code == 200


async def test_sequences_and_pre_rendered_bodies(client: httpx.AsyncClient) -> None:
    listed = await client.get("/items")
    assert listed.content == b'[{"name":"a","count":1},{"name":"b","count":2}]'
    rendered = await client.get("/items", params={"rendered": "1"})
    assert rendered.content == b'[{"name":"pre-rendered","count":1}]'


async def test_no_content_has_no_body(client: httpx.AsyncClient) -> None:
    response = await client.delete("/items/1")
    assert response.status_code == 204 and response.content == b""
    assert "content-type" not in response.headers


async def test_a_value_that_is_not_the_declared_model_fails_instead_of_being_sent(
    client: httpx.AsyncClient,
) -> None:
    with pytest.raises(PydanticSerializationError):
        await client.get("/wrong")


async def test_exceptions_reach_the_apps_exception_handlers(client: httpx.AsyncClient) -> None:
    teapot = await client.get("/raises")
    assert teapot.status_code == 418 and teapot.json() == {"error": "teapot"}
    gone = await client.get("/raises", params={"http": "1"})
    assert gone.status_code == 404 and gone.json() == {"detail": "gone"}


async def test_other_endpoint_shapes_keep_fastapis_handler(client: httpx.AsyncClient) -> None:
    assert (await client.get("/fastapi-shaped", params={"limit": "3"})).json() == {"limit": 3}
    assert (await client.get("/fastapi-shaped", params={"limit": "x"})).status_code == 422


def test_only_the_generated_shape_is_taken_over() -> None:
    async def generated(request: Request, response: Response) -> None: ...

    async def extra(request: Request, response: Response, limit: int) -> None: ...

    def sync(request: Request, response: Response) -> None: ...

    async def renamed(req: Request, response: Response) -> None: ...

    assert takes_request_and_response(generated)
    assert not takes_request_and_response(extra)
    assert not takes_request_and_response(sync)
    assert not takes_request_and_response(renamed)

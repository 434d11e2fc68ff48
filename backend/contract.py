"""The approved contract, served as written, and offline API docs.

`/openapi.json` and `/openapi.yaml` are specs/api/openapi.yaml itself, not FastAPI's
reconstruction; `/docs` and `/redoc` load their assets from this server only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi_offline
import orjson
import yaml
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

CONTRACT_PATH = Path(__file__).resolve().parent.parent / "specs" / "api" / "openapi.yaml"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


@dataclass(frozen=True, eq=False)
class Contract:
    document: dict[str, Any]
    yaml_bytes: bytes
    json_bytes: bytes

    @property
    def version(self) -> str:
        return str(self.document["info"]["version"])

    @property
    def title(self) -> str:
        return str(self.document["info"]["title"])

    def methods_for(self, path: str) -> list[str]:
        """The methods the contract declares for the path that `path` matches (for `Allow`)."""
        for pattern, methods in _path_methods(self):
            if pattern.fullmatch(path):
                return methods
        return []


_HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")


@functools.cache
def _path_methods(contract: Contract) -> list[tuple[re.Pattern[str], list[str]]]:
    """Each contract path as a regex (a `{parameter}` is one segment, as Starlette routes it)."""
    table = []
    for template, item in contract.document["paths"].items():
        parts = re.split(r"(\{[^/{}]+\})", template)
        regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        table.append((re.compile(regex), [m.upper() for m in _HTTP_METHODS if m in item]))
    return table


@functools.cache
def load_contract(path: Path = CONTRACT_PATH) -> Contract:
    raw = path.read_bytes()
    document = yaml.safe_load(raw)
    return Contract(document=document, yaml_bytes=raw, json_bytes=orjson.dumps(document))


def install_contract_routes(app: FastAPI, contract: Contract) -> None:
    app.mount("/docs/static", StaticFiles(directory=DOCS_ASSETS), name="docs-static")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> Response:
        return Response(contract.json_bytes, media_type="application/json")

    @app.get("/openapi.yaml", include_in_schema=False)
    async def openapi_yaml() -> Response:
        return Response(contract.yaml_bytes, media_type="application/yaml")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{contract.title} {contract.version}",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{contract.title} {contract.version}",
            redoc_js_url="/docs/static/redoc.standalone.js",
            redoc_favicon_url="/docs/static/favicon.png",
            with_google_fonts=False,
        )

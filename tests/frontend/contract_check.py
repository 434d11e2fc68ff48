"""Checks a recorded exchange against the contract: declared status, media type, body schema."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import yaml

from tools.mock import CONTRACT


@cache
def contract() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    return document


def _rewrite_refs(node: Any) -> Any:
    """`#/components/schemas/X` -> `#/$defs/X`, so one standalone JSON Schema holds them all."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/components/schemas/", "#/$defs/")
                if key == "$ref" and isinstance(value, str)
                else _rewrite_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = contract()["components"][section][name]
    return node


def operation_for(method: str, url: str) -> tuple[str, dict[str, Any]]:
    """The contract path template and operation that `method url` calls."""
    path = urlsplit(url).path
    for template, item in contract()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is no operation of the contract")


def problems(exchange: dict[str, Any]) -> list[str]:
    """What is wrong with one recorded response (empty when it keeps the contract)."""
    method, url, status = exchange["method"], exchange["url"], exchange["status"]
    template, operation = operation_for(method, url)
    where = f"{method} {template} -> {status}"
    declared = operation["responses"].get(str(status))
    if declared is None:
        return [f"{where}: status not declared"]
    response = _resolve(declared)
    content = response.get("content")
    if not content:
        return [] if exchange["body"] == "" else [f"{where}: a body where the contract has none"]
    media = (exchange["contentType"] or "").split(";")[0].strip()
    if media not in content:
        return [f"{where}: media type {media!r}, the contract says {sorted(content)}"]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": _rewrite_refs(contract()["components"]["schemas"]),
        **_rewrite_refs(content[media]["schema"]),
    }
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    body = json.loads(exchange["body"])
    return [
        f"{where}: {error.message} at {list(error.instance_path)}"
        for error in validator.iter_errors(body)
    ]

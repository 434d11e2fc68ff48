"""fastapi-code-generator visitor: typed endpoint descriptions for our templates.

The stock visitor hands templates argument strings such as `conint(ge=1)` (which mypy rejects
as a type) and drops constraints under `--use-annotated`. This visitor reads each operation's
parameters from the contract itself and renders each one as an ordinary FastAPI parameter
(`Annotated[type, Path(...)/Query(...)/Header(...)]`) with every constraint, so the generated
routes validate exactly what the contract says and type-check under mypy --strict.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
LOCATIONS = ("path", "query", "header")
LOCATION_ORDER = (*LOCATIONS, "body")
# Types whose validation is stricter than the handler-facing type (see templates/formats.jinja2):
# routers validate with the former, handler interfaces receive the latter.
VALIDATED_TYPES = {"AwareDatetime": "RFC3339DateTime"}
# FastAPI's parameter function per location.
PARAMETER_FUNCTIONS = {"path": "Path", "query": "Query", "header": "Header"}


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _ref_name(node: Any) -> str | None:
    if (
        isinstance(node, dict)
        and "$ref" in node
        and node["$ref"].startswith("#/components/schemas/")
    ):
        return str(node["$ref"].rsplit("/", 1)[1])
    return None


def _snake(name: str) -> str:
    snake = re.sub(r"[^0-9A-Za-z]+", "_", name)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", snake).lower().strip("_")
    return snake + "_" if keyword.iskeyword(snake) else snake


def _string_constraints(schema: dict[str, Any]) -> list[str]:
    out = []
    if "minLength" in schema:
        out.append(f"min_length={schema['minLength']}")
    if "maxLength" in schema:
        out.append(f"max_length={schema['maxLength']}")
    if "pattern" in schema:
        out.append(f"pattern={schema['pattern']!r}")
    return out


def _number_constraints(schema: dict[str, Any]) -> list[str]:
    names = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
    return [f"{py}={schema[key]!r}" for key, py in names.items() if key in schema]


def _schema_type(spec: dict[str, Any], raw: Any, models: set[str]) -> tuple[str, list[str]]:
    """Python type of a parameter schema, and the constraints FastAPI enforces on it."""
    name = _ref_name(raw)
    if name is not None:
        models.add(name)
        return name, []
    schema = _resolve(spec, raw)
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return "AwareDatetime", []
        return "str", _string_constraints(schema)
    if kind == "integer":
        return "int", _number_constraints(schema)
    if kind == "number":
        return "float", _number_constraints(schema)
    if kind == "boolean":
        return "bool", []
    if kind == "array":
        item_type, item_constraints = _schema_type(spec, schema["items"], models)
        if item_constraints:
            item_type = f"Annotated[{item_type}, StringConstraints({', '.join(item_constraints)})]"
        array_constraints = []
        if "minItems" in schema:
            array_constraints.append(f"min_length={schema['minItems']}")
        if "maxItems" in schema:
            array_constraints.append(f"max_length={schema['maxItems']}")
        return f"list[{item_type}]", array_constraints
    raise ValueError(f"unsupported parameter schema: {schema!r}")


def _default_literal(spec: dict[str, Any], raw: Any, type_: str) -> str | None:
    schema = _resolve(spec, raw)
    if "default" not in schema:
        return None
    value = schema["default"]
    if _ref_name(raw) is not None:
        return f"{type_}({value!r})"
    return repr(value)


def _parameter(spec: dict[str, Any], raw: Any, models: set[str]) -> dict[str, Any]:
    param = _resolve(spec, raw)
    location = param["in"]
    if location not in LOCATIONS:
        raise ValueError(f"unsupported parameter location {location!r}")
    python_name = _snake(param["name"])
    type_, constraints = _schema_type(spec, param["schema"], models)
    required = bool(param.get("required", False))
    default = _default_literal(spec, param["schema"], type_)
    options = list(constraints)
    if python_name != param["name"]:
        options.insert(0, f"alias={param['name']!r}")
    validated = VALIDATED_TYPES.get(type_, type_)
    if required:
        validated_type, value_type, default_code = validated, type_, None
    elif default is not None:
        validated_type, value_type, default_code = validated, type_, default
    else:
        validated_type, value_type, default_code = f"{validated} | None", f"{type_} | None", "None"
    function = PARAMETER_FUNCTIONS[location]
    return {
        "name": python_name,
        "wire_name": param["name"],
        "annotation": f"Annotated[{validated_type}, {function}({', '.join(options)})]",
        "type": value_type,
        "default": default_code,
        "location": location,
        "is_list": type_.startswith("list["),
    }


def _body(
    spec: dict[str, Any], operation: dict[str, Any], models: set[str]
) -> dict[str, Any] | None:
    request_body = operation.get("requestBody")
    if request_body is None:
        return None
    request_body = _resolve(spec, request_body)
    media = request_body["content"].get("application/json")
    if media is None:
        raise ValueError("only application/json request bodies are supported")
    type_, _ = _schema_type(spec, media["schema"], models)
    required = request_body.get("required", False)
    models.add(type_)
    return {
        "name": "body",
        "wire_name": "body",
        "annotation": type_ if required else f"{type_} | None",
        "type": type_ if required else f"{type_} | None",
        "default": None if required else "None",
        "location": "body",
        "is_list": False,
    }


def _response(spec: dict[str, Any], operation: dict[str, Any], models: set[str]) -> tuple[int, str]:
    """The one success status of an operation and the Python type of its body.

    An array body is a read-only `Sequence[Item]` for handlers: a handler may return any
    sequence of the item model (a list, or a lazy view over rows that renders its own JSON);
    the route declares FastAPI's `response_model` as `list[Item]`.
    """
    successes = sorted(code for code in operation["responses"] if str(code).startswith("2"))
    if len(successes) != 1:
        raise ValueError(f"{operation['operationId']}: exactly one 2xx response expected")
    status = int(successes[0])
    response = _resolve(spec, operation["responses"][successes[0]])
    media = response.get("content", {}).get("application/json")
    if media is None:
        return status, "None"
    schema = media["schema"]
    if _resolve(spec, schema).get("type") == "array":
        item_type, _ = _schema_type(spec, _resolve(spec, schema)["items"], models)
        return status, f"Sequence[{item_type}]"
    type_, _ = _schema_type(spec, schema, models)
    return status, type_


def _endpoints(spec: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    models: set[str] = set()
    endpoints = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            tags = operation.get("tags") or ["default"]
            params = [
                _parameter(spec, raw, models)
                for raw in [*shared, *operation.get("parameters", [])]
                # Parameters the middleware consumes never reach routes or handlers.
                if _resolve(spec, raw).get("x-handled-by") != "middleware"
            ]
            body = _body(spec, operation, models)
            if body is not None:
                params.append(body)
            # Validation reports errors in this order: path, query, header, then the body.
            params.sort(key=lambda p: LOCATION_ORDER.index(p["location"]))
            status, return_type = _response(spec, operation, models)
            endpoints.append(
                {
                    "operation_id": operation["operationId"],
                    "function_name": _snake(operation["operationId"]),
                    "method": method,
                    "path": path,
                    "tag": tags[0],
                    "summary": operation.get("summary", ""),
                    "path_py": repr(path),
                    "operation_id_py": repr(operation["operationId"]),
                    "tag_py": repr(tags[0]),
                    "summary_py": repr(operation.get("summary", "")),
                    "status_code": status,
                    "return_type": return_type,
                    "response_model": None
                    if return_type == "None"
                    else re.sub(r"^Sequence\[", "list[", return_type),
                    "params": params,
                    "optional_body": body is not None and body["default"] is not None,
                }
            )
    endpoints.sort(key=lambda e: (e["tag"], e["path"], e["method"]))
    return endpoints, sorted(models)


def _interface_name(tag: str) -> str:
    return (
        "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", tag) if part) + "Handlers"
    )


_PYDANTIC_IMPORT = re.compile(r"^from pydantic import (?P<names>[A-Za-z0-9_, ]+)$", re.MULTILINE)


def use_validated_types(models_source: str) -> str:
    """models.py with VALIDATED_TYPES swapped in (datamodel-code-generator emits pydantic's own).

    datamodel-code-generator runs before any visitor and has no hook for a custom type per
    format, so `tools.regen` passes its output through this.
    """
    for lax, strict in VALIDATED_TYPES.items():
        word = re.compile(rf"\b{lax}\b")
        if not word.search(models_source):
            continue
        match = _PYDANTIC_IMPORT.search(models_source)
        if match is None or lax not in match["names"].split(", "):
            raise ValueError(f"models.py uses {lax}, not imported by one `from pydantic import`")
        names = [name for name in match["names"].split(", ") if name != lax]
        imports = f"from pydantic import {', '.join(names)}\n\nfrom .formats import {strict}"
        body = word.sub(strict, models_source[match.end() :])
        models_source = models_source[: match.start()] + imports + body
    return _strict_booleans(models_source)


def _strict_booleans(models_source: str) -> str:
    """`bool` fields as `StrictBool`: the contract's `type: boolean` is JSON true/false only.

    pydantic's lax mode (how FastAPI validates a decoded body) also takes "yes", "on", 1 and
    "true"; datamodel-code-generator's `--strict-types bool` is not reachable through
    fastapi-code-generator, so the swap happens here, once, in the generated models.
    """
    word = re.compile(r"\bbool\b")
    if not word.search(models_source):
        return models_source
    match = _PYDANTIC_IMPORT.search(models_source)
    if match is None:
        raise ValueError("models.py has no `from pydantic import` line to add StrictBool to")
    names = sorted({*match["names"].split(", "), "StrictBool"})
    imports = f"from pydantic import {', '.join(names)}"
    body = word.sub("StrictBool", models_source[match.end() :])
    return models_source[: match.start()] + imports + body


def visit(parser: Any, model_path: Path) -> dict[str, object]:
    spec: dict[str, Any] = parser.raw_obj
    endpoints, models = _endpoints(spec)
    tags = sorted({e["tag"] for e in endpoints})
    groups = [
        {
            "tag": tag,
            "dependency": _snake(tag),
            "dependency_py": repr(_snake(tag)),
            "interface": _interface_name(tag),
            "endpoints": [e for e in endpoints if e["tag"] == tag],
        }
        for tag in tags
    ]
    return {
        "endpoints": endpoints,
        "groups": groups,
        "model_names": models,
        "parameter_model_names": _used(
            models, [p["annotation"] for e in endpoints for p in e["params"]]
        ),
        "response_model_names": _used(models, [e["return_type"] for e in endpoints]),
        "returns_sequence": any(e["return_type"].startswith("Sequence[") for e in endpoints),
        "route_imports": _route_imports(endpoints),
        "optional_bodies": any(e["optional_body"] for e in endpoints),
    }


def _route_imports(endpoints: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What routes.py imports besides the handler interfaces: only names its code uses."""
    annotations = [p["annotation"] for e in endpoints for p in e["params"]]
    fastapi = ["APIRouter", "Depends"]
    fastapi += [f for f in ("Header", "Path", "Query") if any(f"{f}(" in a for a in annotations)]
    if any(e["response_model"] is None for e in endpoints):
        fastapi.append("Response")
    return {
        "fastapi": sorted(fastapi),
        "pydantic": [n for n in ("StringConstraints",) if any(n in a for a in annotations)],
        "formats": sorted(
            {t for t in VALIDATED_TYPES.values() if any(t in a for a in annotations)}
        ),
    }


def _used(models: list[str], annotations: list[str]) -> list[str]:
    """The model names that occur in any of these annotations."""
    return [m for m in models if any(re.search(rf"\b{m}\b", a) for a in annotations)]

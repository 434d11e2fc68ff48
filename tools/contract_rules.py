"""Our own compatibility rules for the contract gate, on documents with every local $ref resolved.

Optic (tools.contract_diff) does not flag a removed or renamed optional parameter, a tightened
constraint (maxLength, minimum, pattern...) or a removed response header; these rules do, and
classify every difference between a release and the contract as the version bump it needs:

- major: an existing client can break (it sends something now refused, or receives something
  it was not promised);
- minor: an addition or other change that existing clients do not notice;
- patch: only descriptions, summaries, examples, titles, tags or extensions (`x-...`) changed.

Direction matters: a request schema may only accept more (a type, an enum value, a longer
string), a response schema may only promise more (a field, a required field) and send less
(no new type or enum value). Looser constraints in a response (a longer title) count as minor:
clients read lengths and bounds as documentation, while they switch on types and enum values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["major", "minor", "patch"]
KINDS: tuple[Kind, ...] = ("patch", "minor", "major")
Direction = Literal["request", "response"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keys that only document; removed before deciding whether a change is more than a patch.
_DOC_KEYS = frozenset({"description", "summary", "example", "examples", "externalDocs", "title"})
# Keys whose values map names to objects: a child called `description` there is a name.
_NAME_MAPS = frozenset(
    {
        "properties",
        "patternProperties",
        "paths",
        "responses",
        "headers",
        "content",
        "schemas",
        "parameters",
        "securitySchemes",
        "links",
        "callbacks",
        "webhooks",
        "$defs",
        "mapping",
        "variables",
        "encoding",
        "requestBodies",
    }
)
# (keyword, True when a larger value is stricter)
_BOUNDS = (
    ("maxLength", False),
    ("maxItems", False),
    ("maxProperties", False),
    ("maximum", False),
    ("exclusiveMaximum", False),
    ("minLength", True),
    ("minItems", True),
    ("minProperties", True),
    ("minimum", True),
    ("exclusiveMinimum", True),
)


@dataclass(frozen=True)
class Change:
    """One difference between a release and the contract, with the bump it needs."""

    kind: Kind
    where: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.rule}] {self.message}"


def resolve(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` with every local `$ref` replaced by its target (siblings kept)."""

    def target(ref: str) -> Any:
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and ref not in seen:
            resolved = walk(target(ref), seen | {ref})
            siblings = {key: walk(value, seen) for key, value in node.items() if key != "$ref"}
            return {**resolved, **siblings} if isinstance(resolved, dict) else resolved
        return {key: walk(value, seen) for key, value in node.items()}

    resolved: dict[str, Any] = walk(copy.deepcopy(document), frozenset())
    return resolved


def required_bump(changes: list[Change]) -> Kind | None:
    """The largest bump the changes need, or None when nothing changed."""
    return max((change.kind for change in changes), key=KINDS.index, default=None)


def compare(base: dict[str, Any], head: dict[str, Any]) -> list[Change]:
    """Every difference between two OpenAPI documents that matters to a client, classified."""
    old, new = resolve(base), resolve(head)
    changes: list[Change] = []
    old_ops, new_ops = _operations(old), _operations(new)
    for key, (name, operation) in old_ops.items():
        if key not in new_ops:
            changes.append(Change("major", name, "operation removed", "the operation was removed"))
            continue
        new_name, new_operation = new_ops[key]
        _operation(changes, new_name, operation, new_operation, old, new)
    for key, (name, _) in new_ops.items():
        if key not in old_ops:
            changes.append(Change("minor", name, "operation added", "new operation"))
    only_docs = all(change.kind == "patch" for change in changes)
    if only_docs and _semantic(old) != _semantic(new):
        changes.append(
            Change(
                "minor",
                "contract",
                "other change",
                "something besides descriptions and examples changed",
            )
        )
    if not changes and _without_version(base) != _without_version(head):
        changes.append(
            Change(
                "patch",
                "contract",
                "documentation",
                "only descriptions, summaries, examples or other documentation changed",
            )
        )
    return changes


def _without_version(document: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(document)
    stripped.get("info", {}).pop("version", None)
    return stripped


def _semantic(document: dict[str, Any]) -> Any:
    """The resolved document without documentation, info, or components nothing refers to."""
    kept = {key: value for key, value in document.items() if key not in ("info", "components")}
    kept["securitySchemes"] = document.get("components", {}).get("securitySchemes", {})
    return _strip_docs(kept, in_name_map=False)


def _strip_docs(node: Any, *, in_name_map: bool) -> Any:
    if isinstance(node, list):
        return [_strip_docs(item, in_name_map=False) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _strip_docs(value, in_name_map=key in _NAME_MAPS and not in_name_map)
        for key, value in node.items()
        if in_name_map or not (key in _DOC_KEYS or key == "tags" or key.startswith("x-"))
    }


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """`METHOD /path/{}` (path parameter names left out) -> (`METHOD /path/{name}`, operation)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shape = "/".join("{}" if part.startswith("{") else part for part in path.split("/"))
        for method in _METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                merged = dict(operation)
                merged["parameters"] = _parameters(item.get("parameters"), operation)
                name = f"{method.upper()} {path}"
                found[f"{method.upper()} {shape}"] = (name, merged)
    return found


def _parameters(shared: Any, operation: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Path-level parameters overridden by the operation's, keyed by (location, name)."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for parameter in [*(shared or []), *(operation.get("parameters") or [])]:
        if isinstance(parameter, dict) and "name" in parameter and "in" in parameter:
            location, name = str(parameter["in"]), str(parameter["name"])
            table[(location, name.lower() if location == "header" else name)] = parameter
    return table


def _operation(
    out: list[Change],
    where: str,
    old: dict[str, Any],
    new: dict[str, Any],
    old_doc: dict[str, Any],
    new_doc: dict[str, Any],
) -> None:
    _compare_parameters(out, where, old["parameters"], new["parameters"])
    _request_body(out, where, old.get("requestBody"), new.get("requestBody"))
    _responses(out, where, old.get("responses") or {}, new.get("responses") or {})
    old_security = old.get("security", old_doc.get("security")) or []
    new_security = new.get("security", new_doc.get("security")) or []
    if old_security != new_security:
        # An empty requirement ({}) means anonymous access; losing it, or any new scheme, breaks.
        widened = not new_security or all(r in new_security for r in old_security)
        kind: Kind = "minor" if widened and old_security else "major"
        out.append(
            Change(kind, where, "security changed", f"security {old_security} -> {new_security}")
        )
    if not old.get("deprecated") and new.get("deprecated"):
        out.append(Change("minor", where, "operation deprecated", "the operation is deprecated"))


def _compare_parameters(
    out: list[Change],
    where: str,
    old: dict[tuple[str, str], dict[str, Any]],
    new: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for key, parameter in old.items():
        location, name = str(parameter["in"]), str(parameter["name"])
        label = f"{where} > {location} parameter '{name}'"
        if key not in new:
            added = [p["name"] for k, p in new.items() if k not in old and k[0] == location]
            hint = f" (renamed to {', '.join(repr(n) for n in added)}?)" if added else ""
            out.append(
                Change(
                    "major",
                    label,
                    "parameter removed or renamed",
                    f"{location} parameter '{name}' was removed{hint}; clients that send it "
                    "would be refused or silently ignored",
                )
            )
            continue
        after = new[key]
        if not parameter.get("required") and after.get("required"):
            out.append(
                Change(
                    "major",
                    label,
                    "parameter made required",
                    f"optional {location} parameter '{name}' is now required",
                )
            )
        elif parameter.get("required") and not after.get("required"):
            out.append(Change("minor", label, "parameter made optional", "now optional"))
        for keyword in ("style", "explode", "allowReserved"):
            if parameter.get(keyword) != after.get(keyword):
                out.append(
                    Change(
                        "major",
                        label,
                        "parameter serialisation changed",
                        f"{keyword} {parameter.get(keyword)!r} -> {after.get(keyword)!r}",
                    )
                )
        schema(out, label, parameter.get("schema"), after.get("schema"), "request")
    for key, parameter in new.items():
        if key not in old:
            location, name = str(parameter["in"]), str(parameter["name"])
            label = f"{where} > {location} parameter '{name}'"
            if parameter.get("required"):
                out.append(
                    Change(
                        "major",
                        label,
                        "required parameter added",
                        f"new required {location} parameter '{name}': existing calls lack it",
                    )
                )
            else:
                out.append(
                    Change("minor", label, "parameter added", f"new optional {location} parameter")
                )


def _request_body(out: list[Change], where: str, old: Any, new: Any) -> None:
    label = f"{where} > request body"
    if not isinstance(old, dict) and not isinstance(new, dict):
        return
    if not isinstance(old, dict):
        kind: Kind = "major" if new.get("required") else "minor"
        out.append(Change(kind, label, "request body added", "the operation now takes a body"))
        return
    if not isinstance(new, dict):
        out.append(
            Change("major", label, "request body removed", "the operation no longer takes a body")
        )
        return
    if not old.get("required") and new.get("required"):
        out.append(Change("major", label, "request body made required", "the body is required"))
    _content(out, label, old.get("content") or {}, new.get("content") or {}, "request")


def _content(
    out: list[Change],
    where: str,
    old: dict[str, Any],
    new: dict[str, Any],
    direction: Direction,
) -> None:
    for media_type, item in old.items():
        if media_type not in new:
            out.append(
                Change(
                    "major",
                    f"{where} {media_type}",
                    "media type removed",
                    f"{media_type} is no longer {'accepted' if direction == 'request' else 'sent'}",
                )
            )
            continue
        schema(
            out,
            f"{where} {media_type}",
            (item or {}).get("schema"),
            (new[media_type] or {}).get("schema"),
            direction,
        )
    for media_type in new:
        if media_type not in old:
            out.append(Change("minor", f"{where} {media_type}", "media type added", "new"))


def _responses(out: list[Change], where: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    for status, response in old.items():
        label = f"{where} > response {status}"
        if status not in new:
            out.append(
                Change(
                    "major",
                    label,
                    "status code removed",
                    f"status {status} was removed: clients that handle it lose its contract",
                )
            )
            continue
        after = new[status] or {}
        old_headers = {
            k.lower(): (k, v) for k, v in ((response or {}).get("headers") or {}).items()
        }
        new_headers = {k.lower(): (k, v) for k, v in (after.get("headers") or {}).items()}
        for key, (name, header) in old_headers.items():
            if key not in new_headers:
                out.append(
                    Change(
                        "major",
                        f"{label} > header {name}",
                        "response header removed",
                        f"response header {name} is no longer sent",
                    )
                )
                continue
            after_header = new_headers[key][1] or {}
            if (header or {}).get("required") and not after_header.get("required"):
                out.append(
                    Change(
                        "major",
                        f"{label} > header {name}",
                        "response header made optional",
                        f"response header {name} may now be missing",
                    )
                )
            schema(
                out,
                f"{label} > header {name}",
                (header or {}).get("schema"),
                after_header.get("schema"),
                "response",
            )
        for key, (name, _) in new_headers.items():
            if key not in old_headers:
                out.append(
                    Change("minor", f"{label} > header {name}", "response header added", "new")
                )
        _content(
            out, f"{label} body", (response or {}).get("content") or {}, after.get("content") or {},
            "response",
        )  # fmt: skip
    for status in new:
        if status not in old:
            out.append(
                Change("minor", f"{where} > response {status}", "status code added", "new status")
            )


def _types(node: dict[str, Any]) -> set[str] | None:
    declared = node.get("type")
    if declared is None:
        return None
    types = {declared} if isinstance(declared, str) else set(declared)
    # JSON Schema: every integer is a number.
    return types | {"integer"} if "number" in types else types


def schema(out: list[Change], where: str, old: Any, new: Any, direction: Direction) -> None:
    """Classify the differences between two resolved schemas read in `direction`."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old != new:
            out.append(Change("major", where, "schema changed", f"schema {old!r} -> {new!r}"))
        return
    request = direction == "request"
    _type_rule(out, where, old, new, request)
    _enum_rule(out, where, old, new, request)
    for keyword, larger_is_stricter in _BOUNDS:
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        if before is None or after is None:
            stricter = after is not None
        else:
            stricter = (after > before) == larger_is_stricter
        if request and stricter:
            out.append(
                Change(
                    "major",
                    where,
                    "constraint tightened",
                    f"{keyword} {before if before is not None else '(none)'} -> "
                    f"{after if after is not None else '(none)'}: values accepted before are "
                    "now refused",
                )
            )
        else:
            out.append(
                Change("minor", where, "constraint changed", f"{keyword} {before} -> {after}")
            )
    for keyword in ("pattern", "format", "multipleOf", "const"):
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        # A request may only lose a restriction; a response may only gain one.
        breaking = after is not None if request else before is not None
        if keyword == "format" and not request and after is None:
            breaking = True
        out.append(
            Change(
                "major" if breaking else "minor",
                where,
                f"{keyword} changed",
                f"{keyword} {before!r} -> {after!r}",
            )
        )
    if request and old.get("default") != new.get("default") and "default" in old:
        out.append(
            Change(
                "major",
                where,
                "default changed",
                f"default {old.get('default')!r} -> {new.get('default')!r}: clients that "
                "leave it out get a different result",
            )
        )
    if request and not old.get("uniqueItems") and new.get("uniqueItems"):
        out.append(Change("major", where, "constraint tightened", "uniqueItems is now true"))
    _object_rule(out, where, old, new, request, direction)
    if "items" in old or "items" in new:
        schema(out, f"{where}/items", old.get("items"), new.get("items"), direction)
    for keyword, fewer_breaks in (("anyOf", request), ("oneOf", request), ("allOf", not request)):
        before, after = old.get(keyword) or [], new.get(keyword) or []
        if len(before) != len(after):
            breaking = (len(after) < len(before)) == fewer_breaks
            out.append(
                Change(
                    "major" if breaking else "minor",
                    where,
                    f"{keyword} changed",
                    f"{keyword} has {len(after)} schemas instead of {len(before)}",
                )
            )
        for index, (a, b) in enumerate(zip(before, after, strict=False)):
            schema(out, f"{where}/{keyword}/{index}", a, b, direction)


def _type_rule(
    out: list[Change], where: str, old: dict[str, Any], new: dict[str, Any], request: bool
) -> None:
    before, after = _types(old), _types(new)
    if before == after:
        return
    # None means "any type": narrowing from it loses types, widening to it gains them.
    lost = set() if after is None else ({"*"} if before is None else before - after)
    gained = set() if before is None else ({"*"} if after is None else after - before)
    breaking = bool(lost) if request else bool(gained)
    out.append(
        Change(
            "major" if breaking else "minor",
            where,
            "type changed",
            f"type {old.get('type', '(any)')!r} -> {new.get('type', '(any)')!r}",
        )
    )


def _enum_rule(
    out: list[Change], where: str, old: dict[str, Any], new: dict[str, Any], request: bool
) -> None:
    before, after = old.get("enum"), new.get("enum")
    if before == after:
        return
    removed = [v for v in before if v not in after] if before and after is not None else []
    added = [v for v in after if v not in before] if after and before is not None else []
    if request:
        if after is not None and (before is None or removed):
            what = f"no longer accepts {removed}" if before else f"now only accepts {after}"
            out.append(Change("major", where, "request enum narrowed", what))
        else:
            out.append(Change("minor", where, "request enum widened", f"now also accepts {added}"))
        return
    if before is not None and (after is None or added):
        what = f"may now send {added}" if after else "is no longer limited to its enum"
        out.append(Change("major", where, "response enum widened", f"{what}: clients switch on it"))
    else:
        out.append(Change("minor", where, "response enum narrowed", f"no longer sends {removed}"))


def _object_rule(
    out: list[Change],
    where: str,
    old: dict[str, Any],
    new: dict[str, Any],
    request: bool,
    direction: Direction,
) -> None:
    before: dict[str, Any] = old.get("properties") or {}
    after: dict[str, Any] = new.get("properties") or {}
    required_before, required_after = set(old.get("required") or []), set(new.get("required") or [])
    for name, prop in before.items():
        label = f"{where}/{name}"
        if name not in after:
            if request and isinstance(prop, dict) and prop.get("readOnly"):
                out.append(Change("minor", label, "field removed", "read-only field removed"))
                continue
            out.append(
                Change(
                    "major",
                    label,
                    "request field removed" if request else "response field removed",
                    f"field '{name}' was removed: "
                    + (
                        "clients that send it would be refused"
                        if request
                        else "clients that read it break"
                    ),
                )
            )
            continue
        schema(out, label, prop, after[name], direction)
    for name in after:
        if name not in before:
            out.append(Change("minor", f"{where}/{name}", "field added", f"new field '{name}'"))
    if request:
        for name in sorted(required_after - required_before):
            out.append(
                Change(
                    "major",
                    f"{where}/{name}",
                    "field made required",
                    f"field '{name}' is now required in the request",
                )
            )
    else:
        for name in sorted(required_before - required_after):
            if name in after:
                out.append(
                    Change(
                        "major",
                        f"{where}/{name}",
                        "response field made optional",
                        f"field '{name}' may now be missing from the response",
                    )
                )
    extra_before, extra_after = old.get("additionalProperties"), new.get("additionalProperties")
    if extra_before != extra_after:
        if isinstance(extra_before, dict) and isinstance(extra_after, dict):
            schema(out, f"{where}/additionalProperties", extra_before, extra_after, direction)
        else:
            closed = extra_after is False and extra_before is not False
            breaking = closed if request else extra_before is False
            out.append(
                Change(
                    "major" if breaking else "minor",
                    where,
                    "additionalProperties changed",
                    f"additionalProperties {extra_before!r} -> {extra_after!r}",
                )
            )

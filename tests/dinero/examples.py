"""Realistic Dinero payloads built from the contract's own `example` values."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tests.contract import load_spec

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

DEFAULT_UUID = "74ba828f-0b4b-49e1-b5c9-ef9675755556"
DEFAULT_DATETIME = "2024-03-01T09:30:00Z"


def schema(name: str) -> dict[str, Any]:
    """A component schema of the contract."""
    found: dict[str, Any] = load_spec()["components"]["schemas"][name]
    return found


def _types(prop: dict[str, Any]) -> list[str]:
    kind = prop.get("type")
    if kind is None:
        return []
    return kind if isinstance(kind, list) else [kind]


def _fits(value: Any, prop: dict[str, Any]) -> bool:
    types = _types(prop)
    checks = {
        "null": value is None,
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    if not any(checks.get(t, False) for t in types):
        return False
    if isinstance(value, str) and prop.get("format") == "uuid":
        return bool(_UUID_RE.match(value))
    if isinstance(value, str) and prop.get("format") == "date-time":
        return bool(_DATETIME_RE.match(value))
    return True


def _value(prop: dict[str, Any]) -> Any:
    ref = prop.get("$ref")
    if isinstance(ref, str):
        target = schema(ref.rsplit("/", 1)[1])
        if "enum" in target:
            return target["enum"][0]
        return example(ref.rsplit("/", 1)[1])
    if "example" in prop and _fits(prop["example"], prop):
        return prop["example"]
    types = [t for t in _types(prop) if t != "null"]
    kind = types[0] if types else "string"
    if kind == "array":
        items = prop.get("items", {})
        return [_value(items)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 100.0
    if kind == "boolean":
        return False
    if kind == "object":
        return {}
    if prop.get("format") == "uuid":
        return DEFAULT_UUID
    if prop.get("format") == "date-time":
        return DEFAULT_DATETIME
    return "text"


def example(
    name: str, *, fields: Sequence[str] | str | None = None, **overrides: Any
) -> dict[str, Any]:
    """An instance of a component schema from its examples; `fields` keeps only those names."""
    props: dict[str, Any] = schema(name).get("properties", {})
    wanted: list[str]
    if fields is None:
        wanted = list(props)
    else:
        names = fields.split(",") if isinstance(fields, str) else list(fields)
        by_lower = {p.lower(): p for p in props}
        wanted = [n for n in names if n.lower() in by_lower]
        props = {n: props[by_lower[n.lower()]] for n in wanted}
    instance = {key: _value(props[key]) for key in wanted}
    for key, value in overrides.items():
        if key not in instance and fields is None and key not in props:
            raise KeyError(f"{name} has no property {key}")
        instance[key] = value
    return instance


def page(
    items: list[dict[str, Any]], *, page: int = 0, page_size: int = 100, total: int | None = None
) -> dict[str, Any]:
    """A `{Collection, Pagination}` envelope."""
    return {
        "Collection": items,
        "Pagination": {
            "MaxPageSizeAllowed": 1000,
            "PageSize": page_size,
            "Result": len(items),
            "ResultWithoutFilter": len(items) if total is None else total,
            "Page": page,
        },
    }

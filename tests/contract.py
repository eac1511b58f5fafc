"""Check requests to and responses from Dinero against Dinero's own contract.

The contract is `tests/contracts/dinero-openapi-subset.json` (OpenAPI 3.1, an exact subset of
Dinero's published document; where it came from: tests/contracts/README.md);
`DINERO_OPENAPI_SUBSET` points elsewhere.

- `find_operation(method, path)` maps a concrete path such as `/v1.2/100001/vouchers/purchase` to
  its template and operation object; a path or method the subset does not describe is an error.
- `validate_request(...)` checks path parameters, query parameters (names, types, formats) and
  the JSON body against the operation.
- `validate_response(...)` checks the status and the body. A status the operation does not declare
  is an error for 2xx; for the error statuses Dinero uses on every endpoint (400, 401, 403, 404,
  409, 413, 429, 480, 500, 502, 503) the body must be empty, a JSON string, or Dinero's error object
  (`code`, `message`, `validationErrors`, `languageSpecificMessages`).
- `check_exchange(request, response)` applies both to one `httpx` exchange (for transports and
  `respx` side effects in tests); `ContractTransport` wraps any `httpx` transport with it.

Schemas are JSON Schema 2020-12 (OpenAPI 3.1): nullable fields are `"type": ["null", …]`, objects
forbid unknown properties (`additionalProperties: false`), and the formats `int32`, `int64`,
`double`, `uuid` and `date-time` are checked. Endpoints with a `fields` parameter answer only the
requested fields, spelled the way they were requested (Dinero's documented behaviour); their items
are checked against the schema projected onto those fields.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "DINERO_ERROR_STATUSES",
    "NO_BODY",
    "ContractError",
    "ContractTransport",
    "Operation",
    "check_exchange",
    "find_operation",
    "is_dinero_api_path",
    "load_spec",
    "match_operation",
    "spec_path",
    "validate_request",
    "validate_response",
]

SPEC_ENV: Final = "DINERO_OPENAPI_SUBSET"
SPEC_URI: Final = "urn:dinero-openapi-subset"

# Statuses Dinero answers on any endpoint although the subset declares none of them
# (see dinero-api.md §4): validated against the generic error shape below.
DINERO_ERROR_STATUSES: Final = frozenset({400, 401, 403, 404, 409, 413, 429, 480, 500, 502, 503})

ERROR_BODY_SCHEMA: Final[dict[str, Any]] = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "validationErrors": {
                    "type": ["object", "null"],
                    "additionalProperties": {"type": "string"},
                },
                "languageSpecificMessages": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "required": ["message"],
                        "properties": {
                            "property": {"type": ["string", "null"]},
                            "message": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ]
}

# Paths served next to the API that the subset does not describe: Visma Connect's OAuth endpoints
# (and OpenID discovery), the legacy API-key token endpoint, and the sandbox's own control API.
NON_API_PREFIXES: Final = ("/connect/", "/.well-known/", "/dineroapi/", "/_sandbox")


class ContractError(Exception):
    """A request or response does not match Dinero's contract."""


class _NoBody:
    """Marker for "the response had no JSON body" (empty, binary or text)."""

    _instance: _NoBody | None = None

    def __new__(cls) -> _NoBody:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Final = _NoBody()


@dataclass(frozen=True)
class Operation:
    """One operation of the subset, matched against a concrete path."""

    method: str
    template: str
    spec: dict[str, Any]
    path_params: dict[str, str]


# --------------------------------------------------------------------------------------------
# Loading


def spec_path() -> Path:
    """Where the subset lives: `$DINERO_OPENAPI_SUBSET`, else the repository's own copy."""
    override = os.environ.get(SPEC_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "contracts" / "dinero-openapi-subset.json"


@functools.cache
def load_spec() -> dict[str, Any]:
    """The parsed subset (cached)."""
    path = spec_path()
    try:
        spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:  # pragma: no cover - environment problem
        raise ContractError(f"Dinero OpenAPI subset not found at {path} (set {SPEC_ENV})") from exc
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


def _absolute_refs(schema: Any) -> Any:
    """Copy of `schema` with `#/…` references made absolute against the subset document."""
    if isinstance(schema, dict):
        return {
            key: (
                SPEC_URI + value
                if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _absolute_refs(value)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute_refs(item) for item in schema]
    return schema


def _resolve(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Follow a top-level `$ref` (one level) inside the subset."""
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return dict(schema)
    if not ref.startswith("#/"):
        raise ContractError(f"unsupported reference {ref!r}")
    node: Any = load_spec()
    for part in ref[2:].split("/"):
        node = node[part]
    return _resolve(node)


# --------------------------------------------------------------------------------------------
# Formats

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_LENIENT_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(_UUID_RE.match(value))


def _check_datetime(value: object) -> bool:
    """RFC 3339 date-time, as JSON Schema's `date-time` means (an offset is required)."""
    if not isinstance(value, str):
        return True
    match = _RFC3339_RE.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        date(year, month, day)
    except ValueError:
        return False
    return hour < 24 and minute < 60 and second < 61


def _check_int32(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return True
    return -(2**31) <= value < 2**31


def _check_int64(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return True
    return -(2**63) <= value < 2**63


def _check_double(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    return math.isfinite(value)


@functools.cache
def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("uuid")(_check_uuid)
    checker.checks("date-time")(_check_datetime)
    checker.checks("int32")(_check_int32)
    checker.checks("int64")(_check_int64)
    checker.checks("double")(_check_double)
    return checker


# --------------------------------------------------------------------------------------------
# Matching


def is_dinero_api_path(path: str) -> bool:
    """False for the OAuth, legacy-token and sandbox-control paths served beside the API."""
    return not any(path == p.rstrip("/") or path.startswith(p) for p in NON_API_PREFIXES)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


@functools.cache
def _templates() -> list[tuple[str, list[str]]]:
    return [(template, _segments(template)) for template in load_spec()["paths"]]


def _match_template(segments: Sequence[str], template_segments: Sequence[str]) -> dict[str, str]:
    """Path parameters if the segments fit the template, else raises `LookupError`."""
    if len(segments) != len(template_segments):
        raise LookupError
    params: dict[str, str] = {}
    for actual, expected in zip(segments, template_segments, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            params[expected[1:-1]] = actual
        elif actual != expected:
            raise LookupError
    return params


def match_operation(method: str, path: str) -> Operation:
    """The operation for a concrete path, preferring templates with more literal segments."""
    path = path.split("?", 1)[0]
    segments = _segments(path)
    candidates: list[tuple[int, str, dict[str, str]]] = []
    for template, template_segments in _templates():
        try:
            params = _match_template(segments, template_segments)
        except LookupError:
            continue
        literal = sum(1 for s in template_segments if not s.startswith("{"))
        candidates.append((literal, template, params))
    if not candidates:
        raise ContractError(f"{method.upper()} {path}: no such path in the Dinero contract")
    candidates.sort(key=lambda c: -c[0])
    lowered = method.lower()
    for _, template, params in candidates:
        operation = load_spec()["paths"][template].get(lowered)
        if operation is not None:
            return Operation(lowered.upper(), template, operation, params)
    templates = ", ".join(t for _, t, _ in candidates)
    raise ContractError(
        f"{method.upper()} {path}: the Dinero contract has no {method.upper()} on {templates}"
    )


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """`(template, operation)` for a concrete path; raises `ContractError` if undescribed."""
    operation = match_operation(method, path)
    return operation.template, operation.spec


# --------------------------------------------------------------------------------------------
# Validation helpers


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        _absolute_refs(json.loads(schema_json)),
        registry=_registry(),
        format_checker=_format_checker(),
    )


def _validate(instance: Any, schema: Mapping[str, Any], where: str) -> None:
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:8]:
            location = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
            )
            lines.append(f"  at {location or '(root)'}: {error.message}")
        more = f"\n  … and {len(errors) - 8} more" if len(errors) > 8 else ""
        raise ContractError(f"{where}:\n" + "\n".join(lines) + more)


def _normalise_query(
    query: Mapping[str, Any] | Iterable[tuple[str, Any]] | str | None,
) -> dict[str, list[str]]:
    if query is None:
        return {}
    items: Iterable[tuple[str, Any]]
    if isinstance(query, str):
        items = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    elif isinstance(query, httpx.QueryParams):
        items = query.multi_items()
    elif isinstance(query, Mapping):
        items = query.items()
    else:
        items = query
    result: dict[str, list[str]] = {}
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            result.setdefault(str(key), []).append(text)
    return result


def _parameters(operation: Mapping[str, Any], location: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == location}


def _coerce_parameter(raw: str, schema: Mapping[str, Any], *, lenient_dates: bool) -> Any:
    """The JSON value a query/path string stands for under `schema`, or raises ValueError."""
    resolved = _resolve(schema)
    types = resolved.get("type")
    type_list = types if isinstance(types, list) else [types]
    if "integer" in type_list:
        if not re.fullmatch(r"[+-]?\d+", raw.strip()):
            raise ValueError(f"{raw!r} is not an integer")
        return int(raw)
    if "number" in type_list:
        return float(raw)
    if "boolean" in type_list:
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{raw!r} is not a boolean (true/false)")
        return lowered == "true"
    if lenient_dates and resolved.get("format") == "date-time":
        # Dinero's date-time query parameters take plain dates too (YYYY-MM-DD), see
        # dinero-api.md §3.8; the value must still be a date or date-time.
        if not _LENIENT_DATETIME_RE.match(raw):
            raise ValueError(f"{raw!r} is not a date or date-time")
        try:
            datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{raw!r} is not a valid date or date-time") from exc
        return raw
    return raw


def _check_parameter(
    name: str, raw_values: list[str], param: Mapping[str, Any], where: str
) -> None:
    schema = param.get("schema") or {}
    resolved = _resolve(schema)
    try:
        if resolved.get("type") == "array":
            items = resolved.get("items") or {}
            values = [
                _coerce_parameter(part, items, lenient_dates=True)
                for raw in raw_values
                for part in raw.split(",")
                if part != ""
            ]
            _validate(values, schema, f"{where}: query parameter {name!r}")
            return
        if len(raw_values) > 1:
            raise ContractError(f"{where}: query parameter {name!r} given {len(raw_values)} times")
        value = _coerce_parameter(raw_values[0], schema, lenient_dates=True)
    except ValueError as exc:
        raise ContractError(f"{where}: parameter {name!r}: {exc}") from exc
    check_schema = dict(schema)
    if check_schema.get("format") == "date-time":
        check_schema.pop("format")  # already checked leniently above
    _validate(value, check_schema, f"{where}: parameter {name!r}")


def _json_content(section: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON media type object of a request body or response, if it declares one."""
    content = section.get("content") or {}
    for media_type, media in content.items():
        if "json" in media_type:
            return dict(media)
    return None


# --------------------------------------------------------------------------------------------
# Requests


def validate_request(
    method: str,
    path: str,
    json_body: Any = None,
    query: Mapping[str, Any] | Iterable[tuple[str, Any]] | str | None = None,
) -> None:
    """Check a request: the operation exists, parameters and JSON body match the contract.

    `json_body=None` means "no JSON body" (allowed unless the body is required); a
    multipart/binary upload is passed as `None` too.
    """
    operation = match_operation(method, path)
    where = f"request {operation.method} {operation.template}"

    for name, param in _parameters(operation.spec, "path").items():
        if name not in operation.path_params:
            raise ContractError(f"{where}: path parameter {name!r} missing")
        _check_parameter(name, [operation.path_params[name]], param, where)

    declared = _parameters(operation.spec, "query")
    by_lower = {name.lower(): name for name in declared}
    given = _normalise_query(query)
    if isinstance(path, str) and "?" in path:
        for key, values in _normalise_query(path.split("?", 1)[1]).items():
            given.setdefault(key, []).extend(values)
    seen: set[str] = set()
    for key, values in given.items():
        canonical = by_lower.get(key.lower())  # ASP.NET binds query names case-insensitively
        if canonical is None:
            allowed = ", ".join(declared) or "none"
            raise ContractError(f"{where}: unknown query parameter {key!r} (allowed: {allowed})")
        seen.add(canonical)
        _check_parameter(canonical, values, declared[canonical], where)
    for name, param in declared.items():
        if param.get("required") and name not in seen:
            raise ContractError(f"{where}: required query parameter {name!r} missing")

    body_spec = operation.spec.get("requestBody")
    if body_spec is None:
        if json_body is not None:
            raise ContractError(f"{where}: the operation takes no request body")
        return
    media = _json_content(body_spec)
    if json_body is None:
        if body_spec.get("required"):
            raise ContractError(f"{where}: request body required")
        return
    if media is None:
        content_types = ", ".join(body_spec.get("content") or {})
        raise ContractError(f"{where}: takes {content_types}, not a JSON body")
    schema = media.get("schema")
    if schema is not None:
        _validate(json_body, schema, f"{where}: request body")


# --------------------------------------------------------------------------------------------
# Responses


def _fields_parameter(operation: Mapping[str, Any]) -> dict[str, Any] | None:
    for param in operation.get("parameters", []):
        if param.get("in") == "query" and param.get("name", "").lower() == "fields":
            return dict(param)
    return None


def _requested_fields(
    operation: Mapping[str, Any], query: dict[str, list[str]]
) -> list[str] | None:
    param = _fields_parameter(operation)
    if param is None:
        return None
    raw = next((v[-1] for k, v in query.items() if k.lower() == "fields"), "")
    if not raw.strip():
        raw = str((param.get("schema") or {}).get("default", ""))
    return [name.strip() for name in raw.split(",") if name.strip()]


def _project(item_schema: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The item schema restricted to `fields`, keyed the way they were requested."""
    resolved = _resolve(item_schema)
    properties: dict[str, Any] = resolved.get("properties", {})
    by_lower = {name.lower(): name for name in properties}
    projected: dict[str, Any] = {}
    for field in fields:
        canonical = by_lower.get(field.lower())
        if canonical is None:
            continue  # unknown names are ignored by Dinero
        if any(existing.lower() == field.lower() for existing in projected):
            continue
        projected[field] = properties[canonical]
    return {
        "type": "object",
        "properties": projected,
        "required": list(projected),
        "additionalProperties": False,
    }


def _projected_response_schema(schema: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    resolved = _resolve(schema)
    if resolved.get("type") == "array":
        return {"type": "array", "items": _project(resolved["items"], fields)}
    collection = resolved.get("properties", {}).get("Collection")
    if collection is not None:
        envelope = copy.deepcopy(resolved)
        envelope["properties"]["Collection"] = {
            "type": collection.get("type", ["null", "array"]),
            "items": _project(collection["items"], fields),
        }
        return envelope
    return _project(resolved, fields)


def validate_response(
    method: str,
    path: str,
    status: int,
    json_body: Any = NO_BODY,
    *,
    query: Mapping[str, Any] | Iterable[tuple[str, Any]] | str | None = None,
) -> None:
    """Check a response: the status is declared (or a Dinero error status) and the body fits.

    Pass `NO_BODY` (the default) when the response carried no JSON (empty, a file, text);
    `query` is the request's query, used for the `fields` projection.
    """
    operation = match_operation(method, path)
    where = f"response {status} to {operation.method} {operation.template}"
    declared = operation.spec.get("responses", {}).get(str(status))
    if declared is None:
        if status not in DINERO_ERROR_STATUSES:
            statuses = ", ".join(operation.spec.get("responses", {}))
            raise ContractError(f"{where}: status not in the contract (declared: {statuses})")
        if json_body is not NO_BODY:
            _validate(json_body, ERROR_BODY_SCHEMA, f"{where}: error body")
        return

    media = _json_content(declared)
    if media is None:
        if json_body is not NO_BODY:
            raise ContractError(f"{where}: the contract declares no JSON body, got {json_body!r}")
        return
    if json_body is NO_BODY:
        raise ContractError(f"{where}: a JSON body is required")
    schema = media.get("schema")
    if schema is None:
        return
    if 200 <= status < 300:
        fields = _requested_fields(operation.spec, _normalise_query(query))
        if fields is not None:
            schema = _projected_response_schema(schema, fields)
    _validate(json_body, schema, f"{where}: body")


def _request_json(request: httpx.Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        return None
    raw = request.content
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ContractError(f"request {request.method} {request.url.path}: invalid JSON") from exc


def _response_json(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "")
    raw = response.content
    if not raw or "json" not in content_type:
        return NO_BODY
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ContractError(
            f"response {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: invalid JSON"
        ) from exc


def check_exchange(
    request: httpx.Request,
    response: httpx.Response,
    *,
    prefix: str = "",
    strict_requests: bool = False,
) -> None:
    """Check one exchange with (a stand-in for) Dinero.

    Every response must match the contract. The request must match it whenever the server
    accepted it (2xx), or always with `strict_requests` (for checking one's own client). A path
    the contract does not describe is only acceptable when the server refused it with 404/405.
    Paths outside the API (OAuth, legacy token, sandbox control) are skipped. `prefix` is the
    mount point to strip (e.g. `/sandbox`); paths outside it belong to the host app and are
    skipped too. The response body must have been read.
    """
    path = request.url.path
    if prefix:
        if not path.startswith(prefix):
            return  # served by the host application, not by the stand-in for Dinero
        path = path[len(prefix) :] or "/"
    if not is_dinero_api_path(path):
        return
    query = request.url.query.decode("ascii") if request.url.query else ""
    try:
        match_operation(request.method, path)
    except ContractError:
        if response.status_code in (404, 405):
            body = _response_json(response)
            if body is not NO_BODY:
                _validate(body, ERROR_BODY_SCHEMA, f"{response.status_code} for {path}")
            return
        raise
    if strict_requests or 200 <= response.status_code < 300:
        validate_request(request.method, path, _request_json(request), query)
    validate_response(
        request.method, path, response.status_code, _response_json(response), query=query
    )


class ContractTransport(httpx.AsyncBaseTransport):
    """An `httpx` transport wrapper that checks every exchange with `check_exchange`.

    Wrap the transport that reaches Dinero or a stand-in (`httpx.ASGITransport(app=…)`,
    `httpx.AsyncHTTPTransport()`); a response (or an accepted request) that does not match the
    contract raises `ContractError` from the client call. `prefix` is the mount point, if any.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        prefix: str = "",
        strict_requests: bool = False,
    ) -> None:
        self.inner = inner
        self.prefix = prefix
        self.strict_requests = strict_requests
        self.checked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        check_exchange(request, response, prefix=self.prefix, strict_requests=self.strict_requests)
        self.checked += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

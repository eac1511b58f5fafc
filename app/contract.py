"""What `openapi.yaml` says beyond what FastAPI infers from the routes.

FastAPI documents the parameters, bodies and success answers. This module adds, to the
generated document, everything else a client (or a fuzzer) needs to call the service right:

- every problem answer of each operation, with the stable `code`s it may carry (the response
  schema's `code` is an enum, so a checker can hold the service to it). Those that follow from
  a route's dependencies are derived from them (a bearer token: 401 and 503; the company in the
  path: 404; admins only: 403; validated input: 422; a JSON body: 400); the others are listed
  per operation in `OPERATION_PROBLEMS`;
- the security of each operation: the bearer JWT, or none (`security: []`) where another
  credential applies (the webhook's Standard Webhooks signature, the OAuth callback's state);
- the webhook's signature headers, described so that a sender can produce a valid call;
- the OAuth callback's query, form and answers (an HTML page, JSON, or a redirect);
- `links` for the main flows, and an example for every request body.

Methods a path does not list answer 405 `method_not_allowed` with an `Allow` header naming the
ones it does; `OPTIONS` is not supported (405 with `Allow`), and `HEAD` is not served either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.deps import company_admin, company_member, get_principal
from app.errors import PROBLEM_JSON, PROBLEM_RESPONSES
from app.exports.schemas import MAX_ITEMS_PER_REQUEST

PROBLEM_REF: Final = "#/components/schemas/Problem"
BEARER_SCHEME: Final = "bearerJWT"

# --- problem codes ----------------------------------------------------------------------------

CODES: Final[dict[str, str]] = {
    # the bearer token and the company in the path
    "token_missing": "No `Authorization: Bearer <token>` header.",
    "token_expired": "The token's `exp` has passed.",
    "token_invalid": "Bad signature, unsigned (`alg: none`), malformed, or a claim missing.",
    "jwks_unavailable": "The signing keys (`AUTH_JWKS_URL`) could not be fetched.",
    "company_not_found": "The path's company is not the token's (another company's looks the "
    "same as none).",
    "admin_required": "Only a finance admin (`role: admin`) may do this.",
    # input
    "validation_error": "A parameter or the body does not match the schema; `errors` names "
    "each bad field.",
    "malformed_body": "The body could not be decoded at all (not UTF-8 JSON).",
    "payload_too_large": "The body is larger than this operation takes (`max_bytes` says how "
    "much); refused before it is read.",
    "json_too_deep": "The JSON nests more than 32 levels.",
    "invalid_cursor": "Not a cursor this API gave out (for this list).",
    # connection
    "api_key_rejected": "Dinero did not accept the API key.",
    "api_key_wrong_organization": "The API key belongs to another Dinero organization.",
    "organization_not_pro": "The organization lacks Dinero Pro, which integrations need.",
    "organization_switch_requires_confirmation": "The company's exports are in another "
    'organization; send `"confirm_switch": true` to switch.',
    "dinero_unavailable": "Dinero could not be reached, or failed (always 503; 502 is "
    "`dinero_refused`, Dinero answering no).",
    "dinero_busy": "The organization's Dinero request budget (about 100 a minute, shared with "
    "its exports) is used up for longer than a request waits; `Retry-After` says when to try "
    "again.",
    # the OAuth callback
    "oauth_state_unknown": "The callback carries no state, or one this service did not issue.",
    "oauth_state_expired": "The approval took longer than the state lives; connect again.",
    "oauth_state_reused": "The state was already used (a replayed callback).",
    "oauth_declined": "The admin declined the approval in Dinero.",
    "oauth_failed": "Dinero's approval failed, or the callback carries no code.",
    "oauth_code_rejected": "Dinero refused the authorization code.",
    "oauth_company_mismatch": "The approval was started by another company than the signed-in one.",
    "organization_not_accessible": "The approving login has no access to the organization.",
    # chart
    "not_connected": "Dinero is not connected.",
    "reauth_required": "Dinero no longer accepts the stored credentials; reconnect. (Export "
    "items that failed for this before may still show the retired code `reconnect_dinero`.)",
    "category_not_found": "No such category (or another company's).",
    "tax_code_unknown": "Not one of the organization's VAT codes.",
    "account_not_deposit": "An account that is not one of the synced deposit accounts.",
    # data sources
    "data_source_not_found": "No such data source (or another company's).",
    "accounting_year_required": "`entries` needs an accounting year.",
    "accounting_year_not_applicable": "Only `entries` takes an accounting year.",
    "accounting_year_unknown": "Not one of the organization's accounting years "
    "(`valid_years` lists them).",
    "accounting_year_immutable": "A data source's accounting year cannot change.",
    "date_field_not_available": "None of the data types has that date.",
    "date_field_required": "A date filter needs `date_field` (or a default on the source).",
    "data_type_not_in_source": "The data source does not import that type.",
    "csv_needs_one_data_type": "CSV holds one data type: give exactly one `data_type`.",
    "not_acceptable": "The `Accept` header allows none of JSON, NDJSON and CSV.",
    "dinero_refused": "Dinero refused to list the accounting years.",
    # exports
    "items_rejected": "No item can be exported; each one's reason is in `rejected`.",
    "idempotency_key_reused": "The `Idempotency-Key` was used before with another body.",
    "export_not_found": "No such export (or another company's).",
    "item_not_found": "No such export item (or another company's).",
    "item_not_retryable": "Only failed items, or items deleted in Dinero, can be retried.",
    # the webhook
    "webhook_headers_missing": "A Standard Webhooks header is missing.",
    "webhook_id_invalid": "`webhook-id` is longer than 255 characters.",
    "webhook_timestamp_invalid": "`webhook-timestamp` is not whole Unix seconds.",
    "webhook_timestamp_stale": "`webhook-timestamp` is more than 5 minutes from now.",
    "webhook_signature_invalid": "The signature does not match the body with `WEBHOOK_SECRET`.",
    "invalid_json": "The (verified) webhook body is not JSON.",
    "webhook_id_reused": "This company sent this `webhook-id` before with another body.",
    # deposit accounts created from the setup
    "account_number_taken": "The account number is already used in Dinero's chart; refused "
    "before anything is sent.",
    "no_free_deposit_number": "No number in 55000-55999 is free; give one.",
    "deposit_account_busy": "Another deposit account is being created for the company; retry.",
    "chart_sync_busy": "The account was created; the chart sync that shows it is still running.",
    "chart_sync_failed": "The account was created, but the chart sync after it failed.",
    # reversals
    "item_not_reversible": "Only an exported item (awaiting approval or booked) can be reversed.",
    "item_already_reversed": 'The item is reversed; export it again with `"replace": true`.',
    "voucher_edited_in_dinero": "The voucher was changed in Dinero since it was exported; "
    "`changes` lists how.",
    "accounting_year_closed": "The date is outside Dinero's open accounting years.",
    "period_closed": "The date is on or before the lock date (`books_closed_through`).",
    # development
    "development_only": "Not in production (`APP_ENV=production`).",
    "dev_token_unavailable": "Tokens are verified with JWKS keys, which this service cannot sign.",
    # operations
    "database_unavailable": "The database cannot be reached.",
    "schema_outdated": "The database schema is not at the newest migration.",
}

STATUS_TITLES: Final[dict[int, str]] = {
    400: "Bad request.",
    401: "Not authenticated.",
    403: "Not allowed.",
    404: "Not found.",
    406: "Not acceptable.",
    413: "Too large.",
    409: "Conflict with the current state.",
    422: "Not valid.",
    502: "Dinero refused or failed.",
    503: "Unavailable.",
}

_CALLBACK_PROBLEMS: Final[dict[int, tuple[str, ...]]] = {
    400: (
        "oauth_state_unknown",
        "oauth_state_expired",
        "oauth_state_reused",
        "oauth_declined",
        "oauth_failed",
        "oauth_code_rejected",
        "organization_not_accessible",
        "malformed_body",
    ),
    401: ("token_expired", "token_invalid"),
    403: ("organization_not_pro", "oauth_company_mismatch"),
    413: ("payload_too_large",),
    503: ("dinero_unavailable", "dinero_busy", "jwks_unavailable"),
}

OPERATION_PROBLEMS: Final[dict[str, dict[int, tuple[str, ...]]]] = {
    "healthz": {},
    "create_dev_token": {403: ("development_only",), 409: ("dev_token_unavailable",)},
    "readyz": {503: ("database_unavailable", "schema_outdated")},
    "metrics": {},
    "get_company": {},
    "connect": {
        400: ("api_key_rejected", "api_key_wrong_organization", "organization_not_accessible"),
        403: ("organization_not_pro",),
        409: ("organization_switch_requires_confirmation",),
        503: ("dinero_unavailable", "dinero_busy"),
    },
    "read_connection": {},
    "disconnect": {},
    "oauth_callback_get": _CALLBACK_PROBLEMS,
    "oauth_callback_post": _CALLBACK_PROBLEMS,
    "request_chart_sync": {409: ("not_connected", "reauth_required")},
    "get_chart_sync": {},
    "list_categories": {},
    "update_category": {404: ("category_not_found",), 422: ("tax_code_unknown",)},
    "list_tax_codes": {},
    "list_deposit_accounts": {},
    "get_dinero_settings": {},
    "put_dinero_settings": {422: ("account_not_deposit",)},
    "create_deposit_account": {
        409: (
            "not_connected",
            "reauth_required",
            "account_number_taken",
            "no_free_deposit_number",
            "deposit_account_busy",
            "chart_sync_busy",
        ),
        422: ("account_not_deposit",),
        502: ("dinero_refused",),
        503: ("dinero_unavailable", "dinero_busy", "chart_sync_failed"),
    },
    "list_settings_history": {400: ("invalid_cursor",)},
    "list_category_history": {400: ("invalid_cursor",), 404: ("category_not_found",)},
    "create_data_source": {
        409: ("not_connected", "reauth_required"),
        422: (
            "accounting_year_required",
            "accounting_year_not_applicable",
            "accounting_year_unknown",
            "date_field_not_available",
        ),
        502: ("dinero_refused",),
        503: ("dinero_unavailable", "dinero_busy"),
    },
    "list_data_sources": {},
    "get_data_source": {404: ("data_source_not_found",)},
    "update_data_source": {
        404: ("data_source_not_found",),
        422: (
            "accounting_year_immutable",
            "accounting_year_required",
            "accounting_year_not_applicable",
            "date_field_not_available",
        ),
    },
    "delete_data_source": {404: ("data_source_not_found",)},
    "refresh_data_source": {404: ("data_source_not_found",)},
    "list_data_source_records": {
        400: ("invalid_cursor",),
        404: ("data_source_not_found",),
        406: ("not_acceptable",),
        422: (
            "data_type_not_in_source",
            "date_field_required",
            "date_field_not_available",
            "csv_needs_one_data_type",
        ),
    },
    "create_export": {
        409: ("idempotency_key_reused",),
        422: ("items_rejected", "json_too_deep"),
    },
    "preview_export": {422: ("json_too_deep",)},
    "get_export": {404: ("export_not_found",)},
    "list_export_items": {400: ("invalid_cursor",)},
    "get_export_item": {404: ("item_not_found",)},
    "retry_export_item": {404: ("item_not_found",), 409: ("item_not_retryable",)},
    "reverse_export_item": {
        404: ("item_not_found",),
        409: (
            "item_not_reversible",
            "item_already_reversed",
            "voucher_edited_in_dinero",
            "accounting_year_closed",
            "period_closed",
            "not_connected",
            "reauth_required",
            "idempotency_key_reused",
        ),
    },
    "reverse_export": {404: ("export_not_found",)},
    "list_export_item_reversals": {404: ("item_not_found",)},
    "receive_expense_webhook": {
        400: (
            "webhook_headers_missing",
            "webhook_id_invalid",
            "webhook_timestamp_invalid",
            "webhook_timestamp_stale",
        ),
        401: ("webhook_signature_invalid",),
        409: ("webhook_id_reused",),
        413: ("payload_too_large",),
        422: ("invalid_json", "json_too_deep", "validation_error", "items_rejected"),
    },
}
"""Problems of each operation beyond those its dependencies imply (see `_derived_problems`).

Every operation has a row, even an empty one (tests/test_openapi.py checks): a new route's
author says here which problems it answers."""


# --- what the routes' dependencies imply -------------------------------------------------------


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _validates_input(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.cookie_params or dependant.body_params:
        return True
    return any(_validates_input(sub) for sub in dependant.dependencies)


def uses_bearer(route: Operation) -> bool:
    return get_principal in set(_calls(route.dependant))


def required_role(route: Operation) -> str | None:
    """`admin`, `member`, or None for an operation not scoped to a company."""
    calls = set(_calls(route.dependant))
    if company_admin in calls:
        return "admin"
    if company_member in calls:
        return "member"
    return None


def _derived_problems(route: Operation) -> dict[int, tuple[str, ...]]:
    problems: dict[int, tuple[str, ...]] = {}
    if uses_bearer(route):
        problems[401] = ("token_missing", "token_expired", "token_invalid")
        problems[503] = ("jwks_unavailable",)
    role = required_role(route)
    if role is not None:
        problems[404] = ("company_not_found",)
    if role == "admin":
        problems[403] = ("admin_required",)
    if _validates_input(route.dependant):
        problems[422] = ("validation_error",)
    if route.dependant.body_params:
        problems[400] = ("malformed_body",)
        problems[413] = ("payload_too_large",)
    return problems


def problem_codes(route: Operation) -> dict[int, tuple[str, ...]]:
    """Every problem status of the route and the codes each may carry."""
    merged = {status: list(codes) for status, codes in _derived_problems(route).items()}
    for status, codes in OPERATION_PROBLEMS.get(route.operation_id, {}).items():
        merged.setdefault(status, [])
        merged[status] += [code for code in codes if code not in merged[status]]
    return {status: tuple(merged[status]) for status in sorted(merged)}


def _problem_response(
    status: int, codes: tuple[str, ...], declared: dict[str, Any] | None
) -> dict[str, Any]:
    lead = (declared or {}).get("description") or STATUS_TITLES.get(status, "A problem.")
    lines = "\n".join(
        f"- `{code}`: {CODES[code]}" if code in CODES else f"- `{code}`" for code in codes
    )
    content: dict[str, Any] = dict((declared or {}).get("content") or {})
    content[PROBLEM_JSON] = {
        "schema": {
            "allOf": [
                {"$ref": PROBLEM_REF},
                {"type": "object", "properties": {"code": {"enum": list(codes)}}},
            ]
        }
    }
    response: dict[str, Any] = {"description": f"{lead}\n\n{lines}", "content": content}
    if declared and "headers" in declared:
        response["headers"] = declared["headers"]
    return response


def _router_wide(status: str, declared: dict[str, Any]) -> bool:
    """A default every company router adds, which not every route of it can answer."""
    default = PROBLEM_RESPONSES.get(int(status))
    return default is not None and declared.get("description") == default["description"]


_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "With `dinero_busy`: whole seconds until the organization's Dinero "
        "budget has room again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


_WWW_AUTHENTICATE: Final = {
    "WWW-Authenticate": {
        "description": "`Bearer`.",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    }
}


def _document_problems(route: Operation, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    codes = problem_codes(route)
    for key in list(responses):
        problem = key.startswith(("4", "5")) and int(key) not in codes
        if problem and (key == "422" or _router_wide(key, responses[key])):
            # a router-wide 403 on a route members may call, FastAPI's 422 on a route that
            # validates nothing
            del responses[key]
    for status, status_codes in codes.items():
        declared = responses.get(str(status))
        responses[str(status)] = _problem_response(status, status_codes, declared)
    if uses_bearer(route):
        responses["401"]["headers"] = _WWW_AUTHENTICATE
    if "dinero_busy" in codes.get(503, ()):
        responses["503"]["headers"] = {**responses["503"].get("headers", {}), **_RETRY_AFTER}
    operation["responses"] = dict(sorted(responses.items()))


# --- security ------------------------------------------------------------------------------------

BEARER_DESCRIPTION: Final = (
    "A JWT from the expense platform: HS256 with `AUTH_JWT_SECRET`, or RS256 with a key from "
    "`AUTH_JWKS_URL`. Claims: `sub`, `company_id`, `role` (`admin` or `member`) and `exp`. "
    "A missing, expired, unsigned (`alg: none`) or wrongly signed token answers 401; a path "
    "naming another company answers 404 `company_not_found`; a member calling an admin "
    "operation answers 403 `admin_required`."
)


def _document_security(schema: dict[str, Any], routes: list[Operation]) -> None:
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.clear()
    schemes[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": BEARER_DESCRIPTION,
    }
    for route in routes:
        operation = schema["paths"][route.path][route.method.lower()]
        operation["security"] = [{BEARER_SCHEME: []}] if uses_bearer(route) else []


# --- the webhook -----------------------------------------------------------------------------

WEBHOOK_DESCRIPTION: Final = """

**Signing** ([Standard Webhooks](https://www.standardwebhooks.com/)): with `WEBHOOK_SECRET` =
`whsec_<base64 key>`, the sender sends

- `webhook-id`: a unique id of this message (1 to 255 characters); a replay with the same id is
  answered with the first answer and stores nothing new;
- `webhook-timestamp`: now, in whole Unix seconds (at most 5 minutes off);
- `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, `{webhook-id}.{webhook-timestamp}.{body}`))
  over the exact body bytes; several space-separated signatures may be sent (key rotation).

The headers are checked before the body is read as JSON; a bearer token is not used here."""

SIGNATURE_PATTERN: Final = "^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$"

_WEBHOOK_HEADERS: Final[list[dict[str, Any]]] = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "Unique per message; the idempotency key of the webhook.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        "example": "msg_2mFzbPq0qTn8vYk3",
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "When it was sent, in Unix seconds; at most 5 minutes from now.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "example": "1764680000",
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`; several may be "
        "given, separated by spaces.",
        "schema": {
            "type": "string",
            "pattern": "^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$",
        },
        "example": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    },
]


EXPORT_REQUESTED: Final = "export.requested"
MAX_EVENT_TYPE_LENGTH: Final = 200


def _document_webhook(operation: dict[str, Any]) -> None:
    operation["description"] = operation.get("description", "").rstrip() + WEBHOOK_DESCRIPTION
    operation["parameters"] = _WEBHOOK_HEADERS
    # Only `export.requested` must carry a company and items; any other type is acknowledged
    # (202 `ignored`) whatever else the body holds.
    body = operation["requestBody"]["content"]["application/json"]
    envelope: dict[str, Any] = body["schema"]
    fields = {k: v for k, v in envelope.get("properties", {}).items() if k != "type"}
    if "items" in fields:
        fields["items"] = {**fields["items"], "maxItems": MAX_ITEMS_PER_REQUEST}
    body["schema"] = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {
                "type": "string",
                "maxLength": MAX_EVENT_TYPE_LENGTH,
                "description": f"`{EXPORT_REQUESTED}`; a webhook of another type is "
                "acknowledged (202, `ignored`) and nothing else in it is read.",
            }
        },
        "if": {"required": ["type"], "properties": {"type": {"const": EXPORT_REQUESTED}}},
        "then": {
            "required": [name for name in envelope.get("required", []) if name != "type"],
            "properties": fields,
        },
    }


# --- the OAuth callback ------------------------------------------------------------------------

_CALLBACK_FIELDS: Final[dict[str, Any]] = {
    "state": {"type": "string", "description": "The state this service put in the approval URL."},
    "code": {"type": "string", "description": "The authorization code."},
    "error": {"type": "string", "description": "`access_denied` when declined, or another."},
    "error_description": {"type": "string"},
}

CALLBACK_DESCRIPTION: Final = """

The state is single-use and was issued by `PUT …/dinero/connection`; a state made up by the
caller is refused (400 `oauth_state_unknown`). The answer is a redirect to `FRONTEND_URL` when
it is set (`dinero=connected`, or `dinero=error&code=…&message=…`); otherwise an HTML page for
the browser, or JSON (`application/json` when connected, `application/problem+json` when not)
for a caller whose `Accept` names `application/json` and not `text/html`. A platform bearer
token, if the browser sends one, must be the same company's (403 `oauth_company_mismatch`)."""

_HTML: Final = {"text/html": {"schema": {"type": "string"}}}


def _document_callback(operation: dict[str, Any], *, form: bool) -> None:
    operation["description"] = operation.get("description", "").rstrip() + CALLBACK_DESCRIPTION
    if form:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["state"],
                        "properties": _CALLBACK_FIELDS,
                    },
                    "example": {"state": "3q2-7wEXAMPLEstate", "code": "f1b2EXAMPLEcode"},
                }
            },
        }
    else:
        operation["parameters"] = [
            {
                "name": name,
                "in": "query",
                "required": name == "state",
                "schema": {k: v for k, v in field.items() if k != "description"},
                **({"description": field["description"]} if "description" in field else {}),
            }
            for name, field in _CALLBACK_FIELDS.items()
        ]
    responses: dict[str, Any] = operation["responses"]
    responses["200"] = {
        "description": "Connected (no `FRONTEND_URL`): a page, or JSON.",
        "content": {
            **_HTML,
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "code"],
                    "properties": {
                        "status": {"type": "string", "enum": ["connected"]},
                        "code": {"type": "string", "enum": ["connected"]},
                    },
                }
            },
        },
    }
    responses["303"] = {
        "description": "Back to `FRONTEND_URL` with `dinero=connected` or the error's code.",
        "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
    }
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {**_HTML, **response["content"]}
    operation["responses"] = dict(sorted(responses.items()))


# --- links -------------------------------------------------------------------------------------

_COMPANY: Final = {"company": "$request.path.company"}


def _link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "parameters": {**_COMPANY, **parameters},
        "description": description,
    }


LINKS: Final[dict[tuple[str, str], dict[str, dict[str, Any]]]] = {
    ("create_export", "202"): {
        "GetExport": _link("get_export", "The export just made.", export_id="$response.body#/id"),
        "GetFirstItem": _link(
            "get_export_item", "Its first item.", item_id="$response.body#/items/0/id"
        ),
        "RetryFirstItem": _link(
            "retry_export_item", "Retry its first item.", item_id="$response.body#/items/0/id"
        ),
        "ListItems": _link("list_export_items", "All export items, newest first."),
    },
    ("get_export", "200"): {
        "GetFirstItem": _link(
            "get_export_item", "Its first item.", item_id="$response.body#/items/0/id"
        ),
        "RetryFirstItem": _link(
            "retry_export_item", "Retry its first item.", item_id="$response.body#/items/0/id"
        ),
    },
    ("list_export_items", "200"): {
        "GetFirstItem": _link(
            "get_export_item", "The first item listed.", item_id="$response.body#/items/0/id"
        ),
        "GetItsExport": _link(
            "get_export",
            "The export of the first item listed.",
            export_id="$response.body#/items/0/export_id",
        ),
        "RetryFirstItem": _link(
            "retry_export_item",
            "Retry the first item listed.",
            item_id="$response.body#/items/0/id",
        ),
        "NextPage": _link(
            "list_export_items", "The next page.", cursor="$response.body#/next_cursor"
        ),
    },
    ("get_export_item", "200"): {
        "Retry": _link("retry_export_item", "Retry this item.", item_id="$response.body#/id"),
        "GetItsExport": _link(
            "get_export", "The item's export.", export_id="$response.body#/export_id"
        ),
    },
    ("retry_export_item", "202"): {
        "GetItem": _link("get_export_item", "The item again.", item_id="$response.body#/id"),
    },
    ("create_data_source", "201"): {
        name: _link(operation_id, text, data_source_id="$response.body#/id")
        for name, operation_id, text in (
            ("GetDataSource", "get_data_source", "The data source just made."),
            ("UpdateDataSource", "update_data_source", "Change it."),
            ("RefreshDataSource", "refresh_data_source", "Refresh it now."),
            ("ListRecords", "list_data_source_records", "Its records."),
            ("DeleteDataSource", "delete_data_source", "Delete it."),
        )
    },
    ("list_data_sources", "200"): {
        "GetFirst": _link(
            "get_data_source", "The first listed.", data_source_id="$response.body#/items/0/id"
        ),
    },
    ("list_categories", "200"): {
        "UpdateFirst": _link(
            "update_category", "Rename or hide the first.", category_id="$response.body#/0/id"
        ),
    },
    ("connect", "200"): {"ReadConnection": _link("read_connection", "The connection now.")},
    ("request_chart_sync", "202"): {"GetSync": _link("get_chart_sync", "How the sync goes.")},
    ("put_dinero_settings", "200"): {
        "GetSettings": _link("get_dinero_settings", "The settings now."),
        "GetHistory": _link("list_settings_history", "Every mapping and category change."),
    },
    ("list_settings_history", "200"): {
        "NextPage": _link(
            "list_settings_history", "The next page.", cursor="$response.body#/next_cursor"
        ),
    },
    ("list_category_history", "200"): {
        "NextPage": _link(
            "list_category_history",
            "The next page.",
            category_id="$request.path.category_id",
            cursor="$response.body#/next_cursor",
        ),
    },
    ("update_category", "200"): {
        "GetHistory": _link(
            "list_category_history", "The category's changes.", category_id="$response.body#/id"
        ),
    },
}


def _document_links(operations: dict[str, dict[str, Any]]) -> None:
    for (operation_id, status), links in LINKS.items():
        operations[operation_id]["responses"][status]["links"] = links


# --- request body examples ---------------------------------------------------------------------

_EXPENSE: Final[dict[str, Any]] = {
    "external_id": "exp-2026-000123",
    "type": "card_expense",
    "date": "2026-11-03",
    "description": "Hotel, Aarhus",
    "amount": {"value": 129500, "currency": "DKK"},
    "lines": [{"account_number": 4080, "tax_code": "I25", "amount": 129500}],
    "employee": {"id": "emp-17", "name": "Mette Hansen"},
}

BODY_EXAMPLES: Final[dict[str, dict[str, dict[str, Any]]]] = {
    "create_dev_token": {
        "demo_admin": {
            "summary": "The demo company's admin",
            "value": {"company_id": "demo", "role": "admin"},
        },
    },
    "connect": {
        "oauth": {
            "summary": "Connect with OAuth: answers the approval URL",
            "value": {"method": "oauth", "organization_id": 123456},
        },
        "api_key": {
            "summary": "Connect with an API key (checked with Dinero at once)",
            "value": {"method": "api_key", "organization_id": 123456, "api_key": "0123abcd"},
        },
    },
    "create_deposit_account": {
        "map": {
            "summary": "The card's account, numbered by the service, mapped at once",
            "value": {"name": "Pleo", "use_as": "deposit"},
        },
        "numbered": {
            "summary": "A given number, not mapped",
            "value": {"name": "Udlæg", "number": 55510},
        },
    },
    "reverse_export_item": {
        "reason": {
            "summary": "Undo it, to export it again corrected",
            "value": {"reason": "Wrong amount", "voucher_date": "2026-11-30"},
        },
    },
    "reverse_export": {
        "today": {"summary": "Every item, reversed today", "value": {"reason": "Sent twice"}},
    },
    "update_category": {
        "rename": {"summary": "Rename and keep visible", "value": {"name": "Travel"}},
        "hide": {"summary": "Hide from employees", "value": {"hidden": True}},
    },
    "put_dinero_settings": {
        "clear": {
            "summary": "No mappings (nothing can be exported)",
            "value": {
                "deposit_account": None,
                "out_of_pocket_account": None,
                "reimbursement_account": None,
                "top_up_account": None,
            },
        },
        "mapped": {
            "summary": "Every mapping set to synced deposit accounts",
            "value": {
                "deposit_account": 55030,
                "out_of_pocket_account": 55000,
                "reimbursement_account": 55000,
                "top_up_account": None,
            },
        },
    },
    "create_data_source": {
        "accounts": {
            "summary": "The entry accounts and contacts",
            "value": {"data_types": ["entry_accounts", "contacts"], "refresh_minutes": 60},
        },
        "entries": {
            "summary": "Entries of one accounting year",
            "value": {
                "title": "Entries 2025",
                "data_types": ["entries"],
                "accounting_year": {"start": "2025-01-01", "end": "2025-12-31"},
                "default_date_field": "date",
            },
        },
    },
    "update_data_source": {
        "title": {"summary": "Rename", "value": {"title": "Dashboard data"}},
        "on_demand": {"summary": "Refresh only on demand", "value": {"refresh_minutes": None}},
    },
    "refresh_data_source": {
        "changes": {"summary": "Only what changed", "value": {"full": False}},
        "full": {"summary": "Everything again", "value": {"full": True}},
    },
    "create_export": {
        "expense": {"summary": "One card expense", "value": {"items": [_EXPENSE]}},
    },
    "preview_export": {
        "expense": {
            "summary": "What one card expense would post (nothing is stored or sent)",
            "value": {"items": [_EXPENSE]},
        },
    },
    "receive_expense_webhook": {
        "export_requested": {
            "summary": "Items to export, signed",
            "value": {"type": "export.requested", "company_id": "demo", "items": [_EXPENSE]},
        },
    },
    "oauth_callback_post": {},
}


def _document_examples(operations: dict[str, dict[str, Any]]) -> None:
    for operation_id, examples in BODY_EXAMPLES.items():
        if not examples or operation_id not in operations:
            continue
        body = operations[operation_id]["requestBody"]["content"]["application/json"]
        body["examples"] = examples


# --- calendar dates ------------------------------------------------------------------------------

YMD_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}$"


def _document_dates(node: object) -> None:
    """A `YYYY-MM-DD` pattern is checked as a calendar date too (2025-02-30 is refused): say so."""
    if isinstance(node, dict):
        if node.get("pattern") == YMD_PATTERN and node.get("type") == "string":
            node.setdefault("format", "date")
        for value in node.values():
            _document_dates(value)
    elif isinstance(node, list):
        for value in node:
            _document_dates(value)


# --- the whole document ----------------------------------------------------------------------

OPTIONS_NOTE: Final = (
    "\n\nMethods a path does not list answer 405 `method_not_allowed` with an `Allow` header "
    "naming those it does; `OPTIONS` is not supported (405 with `Allow`), nor is `HEAD`."
)


@dataclass(frozen=True)
class Operation:
    """One documented operation of the app, as routed (prefixes included)."""

    path: str
    method: str
    operation_id: str
    dependant: Dependant


def operations_of(app: FastAPI) -> list[Operation]:
    """Every operation the document lists, in routing order."""
    found: list[Operation] = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        operation_id = str(route.operation_id or route.name)
        for method in sorted(route.methods or ()):
            found.append(Operation(route.path_format or "", method, operation_id, route.dependant))
    return found


def document(app: FastAPI, schema: dict[str, Any]) -> None:
    """Complete FastAPI's document in place (see the module's docstring)."""
    routes = operations_of(app)
    operations: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = schema["paths"][route.path][route.method.lower()]
        operation["operationId"] = route.operation_id
        operations[route.operation_id] = operation
        _document_problems(route, operation)
    _document_security(schema, routes)
    _document_webhook(operations["receive_expense_webhook"])
    _document_callback(operations["oauth_callback_get"], form=False)
    _document_callback(operations["oauth_callback_post"], form=True)
    _document_links(operations)
    _document_examples(operations)
    _document_dates(schema)
    schema["info"]["description"] = schema["info"].get("description", "") + OPTIONS_NOTE

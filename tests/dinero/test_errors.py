"""Dinero's error bodies, in every shape seen, become typed errors keeping Dinero's own text."""

from __future__ import annotations

import json

import pytest

from app.dinero.errors import (
    DineroApiError,
    DineroBrownout,
    DineroDuplicate,
    DineroForbidden,
    DineroInvalidGrant,
    DineroNotFound,
    DineroNotPro,
    DineroOAuthError,
    DineroPayloadTooLarge,
    DineroRateLimited,
    DineroServerError,
    DineroStaleVersion,
    DineroUnauthorized,
    DineroValidationError,
    error_from_response,
    oauth_error_from_response,
    parse_error_body,
)


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_code_message_and_validation_errors() -> None:
    raw = _body(
        {
            "code": 42,
            "message": "Validering fejlede",
            "validationErrors": {"Lines[0].AccountNumber": "Kontoen findes ikke"},
        }
    )
    error = error_from_response(400, raw, method="POST", path="/v1.2/1/vouchers/purchase")
    assert type(error) is DineroValidationError
    assert error.status == 400
    assert error.code == 42
    assert error.dinero_message == "Validering fejlede"
    assert error.validation_errors == {"Lines[0].AccountNumber": "Kontoen findes ikke"}
    assert error.raw_body == raw.decode()
    assert "Kontoen findes ikke" in str(error)
    assert "Validering fejlede" in str(error)
    assert error.summary == "Dinero rejected the data as invalid"


def test_language_specific_messages() -> None:
    raw = _body(
        {
            "code": 42,
            "message": "Validation failed",
            "languageSpecificMessages": [
                {"property": "VoucherDate", "message": "Datoen ligger i et lukket regnskabsår"},
                {"property": None, "message": "Generel fejl"},
            ],
        }
    )
    error = error_from_response(400, raw)
    assert error.validation_errors == {"VoucherDate": "Datoen ligger i et lukket regnskabsår"}
    assert error.dinero_message == "Validation failed"


def test_error_message_list_with_pascal_case_items() -> None:
    raw = _body({"errorMessageList": [{"Code": 63, "Message": "Der blev ikke fundet resultater"}]})
    error = error_from_response(400, raw)
    assert type(error) is DineroNotFound
    assert error.code == 63
    assert error.dinero_message == "Der blev ikke fundet resultater"


def test_plain_text_body_is_kept_verbatim() -> None:
    error = error_from_response(429, b"API calls quota exceeded! (Quota: 100 per 60s)")
    assert type(error) is DineroRateLimited
    assert error.dinero_message == "API calls quota exceeded! (Quota: 100 per 60s)"
    assert error.transient
    assert error.retry_after_seconds >= 60


def test_json_string_body() -> None:
    error = error_from_response(400, _body("File is too large"))
    assert type(error) is DineroValidationError
    assert error.dinero_message == "File is too large"


def test_empty_body() -> None:
    error = error_from_response(500, b"")
    assert type(error) is DineroServerError
    assert error.dinero_message is None
    assert error.code is None


def test_garbage_never_breaks_parsing() -> None:
    for raw in (b"\xff\xfe", b"[1, 2]", b"{", b"null", b'{"code": "abc", "message": 5}'):
        parsed = parse_error_body(raw)
        assert parsed.validation_errors == {} or isinstance(parsed.validation_errors, dict)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"code": 58, "message": "Timestamp is outdated"}, DineroStaleVersion),
        (409, {"code": 72, "message": "Duplicated entity"}, DineroDuplicate),
        (400, {"code": 72, "message": "Duplicated entity"}, DineroDuplicate),
        (400, {"code": 42, "message": "guidMustBeUnique"}, DineroDuplicate),
        (404, {"code": 40, "message": "Not found"}, DineroNotFound),
        (400, {"code": 63, "message": "No results found"}, DineroNotFound),
        (400, {"code": 42, "message": "ledgerItemNotFound"}, DineroNotFound),
        (401, {"code": 41, "message": "Unauthorized"}, DineroUnauthorized),
        (403, {"code": 90, "message": "Organization has no active subscription"}, DineroNotPro),
        (403, {"code": 48, "message": "No access"}, DineroNotPro),
        (403, {"code": 41, "message": "No access to organization"}, DineroForbidden),
        (413, {"code": 43, "message": "Request entity too large"}, DineroPayloadTooLarge),
        (429, {"code": 43, "message": "Limit exceeded"}, DineroRateLimited),
        (480, {"code": 0, "message": "Brownout"}, DineroBrownout),
        (503, {"code": 0, "message": "Service unavailable"}, DineroServerError),
        (418, {"code": 1, "message": "Teapot"}, DineroApiError),
    ],
)
def test_classification(status: int, body: object, expected: type[DineroApiError]) -> None:
    error = error_from_response(status, _body(body))
    assert type(error) is expected
    assert isinstance(error, DineroApiError)


def test_not_pro_is_forbidden_and_explains_itself() -> None:
    error = error_from_response(403, _body({"code": 90, "message": "Kræver Dinero Pro"}))
    assert isinstance(error, DineroForbidden)
    assert "Pro" in error.summary
    assert error.dinero_message == "Kræver Dinero Pro"


def test_brownout_counts_as_server_side() -> None:
    assert issubclass(DineroBrownout, DineroServerError)
    assert DineroServerError.transient


def test_oauth_errors() -> None:
    error = oauth_error_from_response(
        400, _body({"error": "invalid_grant", "error_description": "Refresh token expired"})
    )
    assert type(error) is DineroInvalidGrant
    assert error.error == "invalid_grant"
    assert error.description == "Refresh token expired"
    assert error.dinero_message == "Refresh token expired"

    other = oauth_error_from_response(401, _body({"error": "invalid_client"}))
    assert type(other) is DineroOAuthError
    assert other.error == "invalid_client"

    legacy = oauth_error_from_response(
        400,
        _body({"message": json.dumps({"error": "invalid_grant", "error_description": "Bad key"})}),
    )
    assert type(legacy) is DineroInvalidGrant
    assert legacy.description == "Bad key"

    text = oauth_error_from_response(502, b"Bad Gateway")
    assert text.error == "server_error"
    assert text.description == "Bad Gateway"

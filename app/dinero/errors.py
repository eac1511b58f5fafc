"""Typed Dinero failures, each keeping Dinero's own message verbatim."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final
from uuid import UUID

# Dinero's body `code` values we act on (developer.dinero.dk "Error and status").
CODE_NOT_FOUND = 40
CODE_TIMESTAMP_OUTDATED = 58
CODE_NO_RESULTS = 63
CODE_DUPLICATED_ENTITY = 72
CODE_NO_PRO = 90
CODE_NO_PRO_LEGACY = 48

_MAX_MESSAGE_CHARS = 2000


class DineroError(Exception):
    """Base of every failure talking to Dinero."""

    summary: ClassVar[str] = "Dinero request failed"
    transient: ClassVar[bool] = False
    """True when the same call may succeed later without any change (the job layer waits)."""

    def __init__(self, detail: str | None = None, *, dinero_message: str | None = None) -> None:
        self.detail = detail
        self.dinero_message = dinero_message
        self.completed_ids: tuple[UUID, ...] = ()
        """Ids of ledger items created by earlier chunks of the same call, if any."""
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.summary
        if self.detail:
            text += f": {self.detail}"
        if self.dinero_message and self.dinero_message != self.detail:
            text += f' - Dinero says: "{self.dinero_message}"'
        return text


class DineroTransportError(DineroError):
    """No answer from Dinero (connection refused, DNS, timeout) after any allowed retries."""

    summary = "Could not reach Dinero"
    transient = True

    def __init__(self, detail: str | None = None, *, sent: bool) -> None:
        self.sent = sent
        """False when the request certainly never reached Dinero."""
        super().__init__(detail)


class DineroOutcomeUnknown(DineroError):
    """A write may or may not have taken effect: look in Dinero before trying it again."""

    summary = "Dinero may or may not have carried out the request; check Dinero before retrying"

    def __init__(
        self,
        detail: str | None = None,
        *,
        method: str,
        path: str,
        status: int | None = None,
        dinero_message: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        super().__init__(detail, dinero_message=dinero_message)


class DineroResponseError(DineroError):
    """Dinero answered 2xx with a body that does not match its own contract."""

    summary = "Dinero sent an unexpected response"


class DineroApiError(DineroError):
    """Dinero answered with an HTTP error status."""

    summary = "Dinero refused the request"

    def __init__(
        self,
        *,
        status: int,
        code: int | str | None = None,
        message: str | None = None,
        validation_errors: Mapping[str, str] | None = None,
        raw_body: str = "",
        method: str | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.validation_errors: dict[str, str] = dict(validation_errors or {})
        self.raw_body = raw_body
        self.method = method
        self.path = path
        where = f"{method} {path} " if method and path else ""
        code_text = f", code {code}" if code is not None else ""
        fields = self.fields_text
        if detail is None:
            detail = f"{where}(HTTP {status}{code_text})" + (f" [{fields}]" if fields else "")
        super().__init__(detail, dinero_message=message)

    @property
    def fields_text(self) -> str:
        """Dinero's validation errors as one text (`Field: message; …`), empty without any."""
        return "; ".join(f"{key}: {value}" for key, value in self.validation_errors.items())

    @property
    def refused(self) -> bool:
        """Dinero said no to what was sent (4xx), rather than failing for now (429, 5xx): the
        call did nothing, and sending it again as it is would earn the same answer."""
        return not self.transient and bool(self.status) and self.status < 500

    @property
    def refuses_date(self) -> bool:
        """Dinero's validation errors name the voucher's date: the day is outside the
        organization's open accounting years (the year is closed, or missing)."""
        return any(key.lower() in DATE_FIELDS for key in self.validation_errors)


DATE_FIELDS: Final = frozenset({"voucherdate", "date"})
"""Dinero's names (lower-cased) for a voucher's or ledger item's date in its validation errors."""


class DineroValidationError(DineroApiError):
    """400: Dinero found the request invalid (missing field, unknown account, closed period…)."""

    summary = "Dinero rejected the data as invalid"


class DineroStaleVersion(DineroApiError):
    """Error code 58: the Timestamp/Version sent is outdated; re-read the entity and retry."""

    summary = "The entity was changed in Dinero since it was read (outdated timestamp)"


class DineroDuplicate(DineroApiError):
    """409 or code 72: an entity with this client-chosen id already exists."""

    summary = "Dinero already has an entity with this id"


class DineroNotFound(DineroApiError):
    """404, or 400 with code 40/63 or "ledgerItemNotFound"."""

    summary = "Dinero does not know the requested entity"


class DineroUnauthorized(DineroApiError):
    """401 even after a fresh access token: the connection needs re-authorisation."""

    summary = "Dinero did not accept the access token; the connection must be re-authorised"


class DineroForbidden(DineroApiError):
    """403: the login may not access this organization or operation."""

    summary = "Dinero denied access to this organization"


class DineroNotPro(DineroForbidden):
    """403 with code 90 (older docs: 48): the organization has no active Dinero Pro."""

    summary = "The Dinero organization has no active Pro subscription, which the API requires"


class DineroPayloadTooLarge(DineroApiError):
    """413 (or refused locally): the file is larger than Dinero's 6 MB limit."""

    summary = "The file is too large for Dinero (max 6 MB)"

    @classmethod
    def refused_locally(cls, filename: str, size: int, limit: int) -> DineroPayloadTooLarge:
        """The error raised before sending a file Dinero would refuse."""
        return cls(
            status=413,
            detail=f"{filename!r} is {size} bytes; Dinero accepts at most {limit} bytes (not sent)",
        )


class DineroRateLimited(DineroApiError):
    """429: the organization's request quota is used up; wait at least a minute."""

    summary = "Dinero's rate limit was reached; wait a minute before trying again"
    transient = True
    retry_after_seconds: float = 60.0
    """Dinero sends no Retry-After; its guidance is to wait a minute."""


class DineroServerError(DineroApiError):
    """5xx: Dinero failed internally."""

    summary = "Dinero had an internal error"
    transient = True


class DineroBrownout(DineroServerError):
    """480: a deprecated Dinero endpoint is being switched off ("brownout")."""

    summary = "Dinero is switching off this endpoint version (brownout)"


class DineroOAuthError(DineroError):
    """The token endpoint refused a grant (RFC 6749 §5.2 `error`/`error_description`)."""

    summary = "Dinero's login service refused the request"

    def __init__(
        self, error: str, description: str | None = None, *, status: int | None = None
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(error, dinero_message=description)


class DineroInvalidGrant(DineroOAuthError):
    """`invalid_grant`: the code, refresh token or API key is no longer valid; re-authorise."""

    summary = "Dinero no longer accepts the stored authorisation; connect again"


InvalidGrant = DineroInvalidGrant


# --- parsing ---------------------------------------------------------------------------------


def _get(body: Mapping[str, Any], name: str) -> Any:
    """Case-insensitive key lookup (Dinero mixes `code` and `Code`)."""
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        joined = " ".join(t for t in (_text(item) for item in value) if t)
        return joined or None
    return str(value)


def _code(value: Any) -> int | str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text or None


class ParsedErrorBody:
    """What could be read out of an error body; everything optional."""

    def __init__(self) -> None:
        self.code: int | str | None = None
        self.message: str | None = None
        self.validation_errors: dict[str, str] = {}
        self.oauth_error: str | None = None
        self.oauth_description: str | None = None


def parse_error_body(raw: bytes | str) -> ParsedErrorBody:
    """Read `code`, `message`, `validationErrors`, `languageSpecificMessages`, `errorMessageList`,
    or an OAuth `error` out of any body, JSON or plain text."""
    parsed = ParsedErrorBody()
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.strip()
    if not text:
        return parsed
    try:
        body: Any = json.loads(text)
    except ValueError:
        parsed.message = (
            text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "…"
        )
        return parsed
    _fill(parsed, body)
    return parsed


def _fill(parsed: ParsedErrorBody, body: Any) -> None:
    if isinstance(body, str):
        # e.g. the files endpoint's `"string"` 400 body, or a JSON string wrapping JSON.
        inner = body.strip()
        if inner.startswith("{"):
            try:
                _fill(parsed, json.loads(inner))
                return
            except ValueError:
                pass
        parsed.message = parsed.message or (inner or None)
        return
    if isinstance(body, list):
        for item in body:
            _fill(parsed, item)
        return
    if not isinstance(body, Mapping):
        return

    parsed.code = parsed.code if parsed.code is not None else _code(_get(body, "code"))
    error = _get(body, "error")
    if isinstance(error, str) and error:
        parsed.oauth_error = parsed.oauth_error or error
        parsed.oauth_description = parsed.oauth_description or _text(
            _get(body, "error_description")
        )
    message = _get(body, "message")
    if isinstance(message, str) and message.strip().startswith("{"):
        # Legacy authz server: `message` holds a JSON string with `error` inside.
        try:
            _fill(parsed, json.loads(message))
        except ValueError:
            parsed.message = parsed.message or _text(message)
    else:
        parsed.message = parsed.message or _text(message)

    validation = _get(body, "validationErrors")
    if isinstance(validation, Mapping):
        for key, value in validation.items():
            text = _text(value)
            if text:
                parsed.validation_errors[str(key)] = text
    language_messages = _get(body, "languageSpecificMessages")
    if isinstance(language_messages, list):
        loose: list[str] = []
        for item in language_messages:
            if not isinstance(item, Mapping):
                continue
            prop = _text(_get(item, "property"))
            text = _text(_get(item, "message"))
            if text and prop:
                parsed.validation_errors.setdefault(prop, text)
            elif text:
                loose.append(text)
        if loose and not parsed.message:
            parsed.message = " ".join(loose)
    error_list = _get(body, "errorMessageList")
    if isinstance(error_list, list):
        texts: list[str] = []
        for item in error_list:
            if not isinstance(item, Mapping):
                continue
            if parsed.code is None:
                parsed.code = _code(_get(item, "code"))
            text = _text(_get(item, "message"))
            if text:
                texts.append(text)
        if texts and not parsed.message:
            parsed.message = " ".join(texts)
    if not parsed.message and parsed.oauth_description:
        parsed.message = parsed.oauth_description
    if not parsed.message and parsed.validation_errors:
        parsed.message = "; ".join(f"{k}: {v}" for k, v in parsed.validation_errors.items())


def _mentions(parsed: ParsedErrorBody, needle: str) -> bool:
    needle = needle.lower()
    return any(
        isinstance(value, str) and needle in value.lower()
        for value in (parsed.code, parsed.message, parsed.oauth_error)
    )


def _is_no_pro(parsed: ParsedErrorBody) -> bool:
    if parsed.code in (CODE_NO_PRO, CODE_NO_PRO_LEGACY):
        return True
    return bool(parsed.message and re.search(r"\bpro\b", parsed.message, re.IGNORECASE))


def error_class_for(status: int, parsed: ParsedErrorBody) -> type[DineroApiError]:
    """Choose the most specific error class for a status and parsed body."""
    if status == 429:
        return DineroRateLimited
    if status == 401:
        return DineroUnauthorized
    if status == 403:
        return DineroNotPro if _is_no_pro(parsed) else DineroForbidden
    if status == 413:
        return DineroPayloadTooLarge
    if status == 480:
        return DineroBrownout
    if status >= 500:
        return DineroServerError
    if parsed.code == CODE_TIMESTAMP_OUTDATED:
        return DineroStaleVersion
    if status == 409 or parsed.code == CODE_DUPLICATED_ENTITY or _mentions(parsed, "mustBeUnique"):
        return DineroDuplicate
    if (
        status == 404
        or parsed.code in (CODE_NOT_FOUND, CODE_NO_RESULTS)
        or _mentions(parsed, "NotFound")
    ):
        return DineroNotFound
    if status in (400, 422):
        return DineroValidationError
    return DineroApiError


def error_from_response(
    status: int, raw: bytes | str, *, method: str | None = None, path: str | None = None
) -> DineroApiError:
    """Build the typed error for an HTTP error response from the API."""
    parsed = parse_error_body(raw)
    raw_text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    cls = error_class_for(status, parsed)
    return cls(
        status=status,
        code=parsed.code,
        message=parsed.message,
        validation_errors=parsed.validation_errors,
        raw_body=raw_text,
        method=method,
        path=path,
    )


def oauth_error_from_response(status: int, raw: bytes | str) -> DineroOAuthError:
    """Build the typed error for a refusal from a token endpoint."""
    parsed = parse_error_body(raw)
    error = parsed.oauth_error
    if error is None:
        error = "server_error" if status >= 500 else "invalid_request"
    description = parsed.oauth_description or parsed.message
    cls = DineroInvalidGrant if error == "invalid_grant" else DineroOAuthError
    return cls(error, description, status=status)


__all__ = [
    "DineroApiError",
    "DineroBrownout",
    "DineroDuplicate",
    "DineroError",
    "DineroForbidden",
    "DineroInvalidGrant",
    "DineroNotFound",
    "DineroNotPro",
    "DineroOAuthError",
    "DineroOutcomeUnknown",
    "DineroPayloadTooLarge",
    "DineroRateLimited",
    "DineroResponseError",
    "DineroServerError",
    "DineroStaleVersion",
    "DineroTransportError",
    "DineroUnauthorized",
    "DineroValidationError",
    "InvalidGrant",
    "error_from_response",
    "oauth_error_from_response",
    "parse_error_body",
]

"""Checks on untrusted input that PostgreSQL, UTF-8 or the JSON codec would otherwise trip over.

PostgreSQL's `text` and `jsonb` refuse a NUL character, and an unpaired surrogate (which JSON's
`\\ud800` escape produces) cannot be encoded as UTF-8 at all. Both are refused where text
enters, field by field (`SafeStr`), so they answer a 422 naming the field instead of a 500 from
the database or the response encoder. JSON nested deeper than any request of this API needs is
refused before it reaches code that walks it recursively.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StrictStr
from pydantic_core import PydanticCustomError

from app.errors import AppError, ValidationFailed

MAX_JSON_DEPTH: Final = 32
"""Arrays and objects inside each other; the deepest request of this API has 5."""

NUL_MESSAGE: Final = "Text may not contain the NUL character (\\u0000)."
SURROGATE_MESSAGE: Final = (
    "Text may not contain an unpaired surrogate (\\ud800-\\udfff): it is not valid Unicode."
)


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def is_safe_text(value: object) -> bool:
    return isinstance(value, str) and text_problem(value) is None


def check_idempotency_key(key: str | None) -> None:
    """Refuse (422, naming the header) an `Idempotency-Key` that cannot be stored as text."""
    if key is not None and not is_safe_text(key):
        raise ValidationFailed(
            "The Idempotency-Key header holds characters that cannot be stored.",
            errors={"Idempotency-Key": "Printable text only."},
        )


def _checked(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("text_invalid", problem)
    return value


def checked_if_text(value: object) -> object:
    """As a BeforeValidator on a union with `str`: one error at the field, not one per member."""
    if isinstance(value, str):
        _checked(value)
    return value


SafeStr = Annotated[str, AfterValidator(_checked)]
"""A string that PostgreSQL and UTF-8 accept (no NUL, no unpaired surrogate)."""
SafeStrictStr = Annotated[StrictStr, AfterValidator(_checked)]

_NUMBER = re.compile(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")


def _moment_text(value: object) -> object:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise PydanticCustomError(
            "moment_text", "Give a date and time with a UTC offset, e.g. 2026-12-01T00:00:00Z."
        )
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_moment_text)]
"""An RFC 3339 date-time with a UTC offset; a bare number (which pydantic would read as Unix
seconds) is refused like any other malformed moment, as its `format: date-time` says."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # built in code (JSON has no dates: its input is text)
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError(
            "date_format",
            "Give the date as YYYY-MM-DD, e.g. 2026-11-03; got {got}.",
            {"got": repr(value)},
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "date_invalid", "{got} is not a date in the calendar.", {"got": value}
        ) from None


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date as YYYY-MM-DD text (no number or date-time coerced to a date)."""
"""The same, and a JSON string only (no number coerced to text)."""


class InvalidCursor(AppError):
    """A `cursor` that does not decode to a position this API could have given out."""

    status = 400
    code = "invalid_cursor"
    title = "Invalid cursor"

    def __init__(self, detail: str = "The cursor is not one this API gave out.") -> None:
        super().__init__(
            detail + " Start again without it, or pass a `next_cursor` as it was given.",
            errors={"cursor": "Not a cursor from next_cursor."},
        )


def cleaned_text(value: str) -> str:
    """Text from a third party kept for display: NULs dropped, unpaired surrogates replaced."""
    if text_problem(value) is None:
        return value
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def escaped_text(value: str) -> str:
    """Text echoing a client's input (a validator's message) made storable, visibly: a NUL as
    `\\u0000`, an unpaired surrogate as its `\\udXXX` escape."""
    if text_problem(value) is None:
        return value
    return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests arrays/objects more than `limit` deep (walked, not recursed)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_too_deep_error() -> ValidationFailed:
    return ValidationFailed(
        f"The JSON body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep.",
        code="json_too_deep",
        errors={"body": f"At most {MAX_JSON_DEPTH} levels of nesting."},
    )


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON; refuses what is not JSON, or is nested too deep (422)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise json_too_deep_error() from None
    except ValueError:  # also UnicodeDecodeError: bytes that are not UTF-8
        raise ValidationFailed(
            "The body is not JSON.", code="invalid_json", errors={"body": "Not JSON."}
        ) from None
    if too_deep(value):
        raise json_too_deep_error()
    return value


__all__ = [
    "MAX_JSON_DEPTH",
    "InvalidCursor",
    "Moment",
    "SafeStr",
    "SafeStrictStr",
    "checked_if_text",
    "cleaned_text",
    "escaped_text",
    "is_safe_text",
    "json_too_deep_error",
    "parse_json_body",
    "text_problem",
    "too_deep",
]

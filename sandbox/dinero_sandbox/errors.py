"""Errors shaped the way Dinero and Visma Connect send them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Dinero's error codes (developer.dinero.dk "Error and status"), as far as they are known.
NOT_FOUND = 40
UNAUTHORIZED = 41  # also "insufficient permissions"
VALIDATION = 42
LIMIT_EXCEEDED = 43
TIMESTAMP_OUTDATED = 58
DUPLICATED_ENTITY = 72
NO_PRO = 90


class DineroError(Exception):
    """An API error answered as `{code, message, validationErrors, languageSpecificMessages}`."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        validation_errors: Mapping[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation_errors = dict(validation_errors) if validation_errors else None
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body Dinero sends."""
        messages = (
            [{"property": key, "message": value} for key, value in self.validation_errors.items()]
            if self.validation_errors
            else None
        )
        return {
            "code": self.code,
            "message": self.message,
            "validationErrors": self.validation_errors,
            "languageSpecificMessages": messages,
        }


def validation_error(errors: Mapping[str, str], message: str = "Validation error") -> DineroError:
    """400 / code 42 with per-property messages."""
    return DineroError(400, VALIDATION, message, errors)


def not_found(what: str) -> DineroError:
    """404 / code 40."""
    return DineroError(404, NOT_FOUND, f"{what} not found")


def timestamp_outdated(what: str = "The entity") -> DineroError:
    """400 / code 58: the caller's Timestamp/Version is stale (re-read and retry)."""
    return DineroError(
        400,
        TIMESTAMP_OUTDATED,
        f"{what} has been changed since it was read: timestamp outdated",
        {"Timestamp": "The timestamp is outdated"},
    )


class OAuthError(Exception):
    """A Visma Connect / OAuth 2.0 error: `{"error": …, "error_description": …}`."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

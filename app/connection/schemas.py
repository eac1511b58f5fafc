"""API shapes for the Dinero connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from app.connection.models import ConnectionMethod, ConnectionStatus
from app.inputs import text_problem

# The rule `_api_key_matches_method` enforces, said in the document: an API key with method
# api_key (and only then).
_API_KEY_WITH_ITS_METHOD: dict[str, Any] = {
    "if": {"required": ["method"], "properties": {"method": {"const": "api_key"}}},
    "then": {
        "required": ["api_key"],
        "properties": {"api_key": {"type": "string", "minLength": 1}},
    },
    "else": {"properties": {"api_key": {"type": "null"}}},
}


class ConnectionRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra=_API_KEY_WITH_ITS_METHOD)

    organization_id: StrictInt = Field(
        gt=0, le=2**53, description="The Dinero Firma ID (shown bottom-left in Dinero)."
    )
    method: Literal["oauth", "api_key"] = "oauth"
    api_key: SecretStr | None = Field(
        default=None, description="Required with method api_key (Dinero's personal integration)."
    )
    confirm_switch: StrictBool = Field(
        default=False,
        description="Allow connecting to a different organization than before.",
    )

    @field_validator("api_key")
    @classmethod
    def _api_key_is_text(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and text_problem(value.get_secret_value()) is not None:
            # Not the key itself: only that it holds what no key does.
            raise ValueError("the API key holds a NUL or an unpaired surrogate")
        return value

    @model_validator(mode="after")
    def _api_key_matches_method(self) -> ConnectionRequest:
        if self.method == "api_key" and not (self.api_key and self.api_key.get_secret_value()):
            raise ValueError("api_key is required when method is api_key")
        if self.method == "oauth" and self.api_key is not None:
            raise ValueError("api_key is only used with method api_key")
        return self


class RefusedAttemptOut(BaseModel):
    """The last attempt to connect, refused; cleared once an attempt succeeds."""

    failed_at: datetime
    problem: str = Field(description="Why it was refused, in plain words.")
    problem_code: str = Field(
        description="The code the OAuth callback answered, e.g. oauth_declined, "
        "organization_not_accessible, organization_not_pro, oauth_state_expired."
    )
    dinero_message: str | None = Field(
        default=None, description="Dinero's own text, when Dinero gave one."
    )


class ConnectionOut(BaseModel):
    status: ConnectionStatus
    organization_id: int | None = None
    organization_name: str | None = None
    method: ConnectionMethod | None = None
    connected_at: datetime | None = None
    last_synced_at: datetime | None = None
    problem: str | None = Field(
        default=None,
        description="Why the connection needs attention. While not connected (or pending) with "
        "no problem of its own: why the last attempt to connect was refused.",
    )
    problem_code: str | None = Field(default=None, description="The stable code of `problem`.")
    last_attempt: RefusedAttemptOut | None = Field(
        default=None,
        description="The last OAuth approval, when it ended in a refusal (declined, no access "
        "to the organization, no Dinero Pro, expired…), until an attempt succeeds or Dinero is "
        "disconnected. A refusal leaves a working connection as it was: its status stays "
        "connected.",
    )
    authorization_url: str | None = Field(
        default=None, description="With status pending: where the admin approves (Godkend)."
    )

"""API shapes for the Dinero connection."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from app.connection.models import ConnectionMethod, ConnectionStatus


class ConnectionRequest(BaseModel):
    organization_id: int = Field(
        gt=0, le=2**53, description="The Dinero Firma ID (shown bottom-left in Dinero)."
    )
    method: Literal["oauth", "api_key"] = "oauth"
    api_key: SecretStr | None = Field(
        default=None, description="Required with method api_key (Dinero's personal integration)."
    )
    confirm_switch: bool = Field(
        default=False,
        description="Allow connecting to a different organization than before.",
    )

    @model_validator(mode="after")
    def _api_key_matches_method(self) -> ConnectionRequest:
        if self.method == "api_key" and not (self.api_key and self.api_key.get_secret_value()):
            raise ValueError("api_key is required when method is api_key")
        if self.method == "oauth" and self.api_key is not None:
            raise ValueError("api_key is only used with method api_key")
        return self


class ConnectionOut(BaseModel):
    status: ConnectionStatus
    organization_id: int | None = None
    organization_name: str | None = None
    method: ConnectionMethod | None = None
    connected_at: datetime | None = None
    last_synced_at: datetime | None = None
    problem: str | None = Field(default=None, description="Why the connection needs attention.")
    problem_code: str | None = None
    authorization_url: str | None = Field(
        default=None, description="With status pending: where the admin approves (Godkend)."
    )

"""Access tokens as the client sees them: a per-organization provider it can ask to refresh."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import SecretStr


@runtime_checkable
class TokenProvider(Protocol):
    """Gives a valid access token for one organization's connection."""

    async def get(self, force_refresh: bool = False) -> str:
        """Return an access token; with `force_refresh`, obtain a new one first (after a 401)."""
        ...


class StaticTokenProvider:
    """A fixed token (tests, the sandbox); a forced refresh gives the same token again."""

    def __init__(self, token: str | SecretStr) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.refreshes = 0

    async def get(self, force_refresh: bool = False) -> str:
        """Return the fixed token."""
        if force_refresh:
            self.refreshes += 1
        return self._token.get_secret_value()

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=**********)"


__all__ = ["StaticTokenProvider", "TokenProvider"]

"""What every benchmark sets up the same way: a throw-away database, settings, child processes."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pgserver
from dinero_sandbox import CLIENT_ID, CLIENT_SECRET
from pydantic import SecretStr

from app.config import Settings
from app.migrations_util import upgrade_to_head
from tests.netutil import free_port as free_port

JWT_SECRET = "bench-jwt-secret-" + "x" * 32
ENCRYPTION_KEY = "r6Q3pJcTtH2kqC0m6bJXc6GJw8b8a2mXq0L0c5bQ8yI="
WEBHOOK_SECRET = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQ="  # noqa: S105 - a benchmark-only secret


@dataclass
class Database:
    url: str
    postmaster_pid: int | None


@contextlib.contextmanager
def temp_database(prefix: str = "bench-") -> Iterator[Database]:
    """A fresh embedded PostgreSQL with one database migrated to head; gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        try:
            server.psql("CREATE DATABASE bench;")
            url: str = server.get_uri("bench")
            upgrade_to_head(url)
            yield Database(url=url, postmaster_pid=server.get_pid())
        finally:
            server.cleanup()


def service_settings(database_url: str, dinero: str | None = None, **overrides: Any) -> Settings:
    """The service's settings for a benchmark; with `dinero`, pointed at a stand-in there."""
    values: dict[str, Any] = {
        "database_url": SecretStr(database_url),
        "auth_jwt_secret": SecretStr(JWT_SECRET),
        "token_encryption_keys": SecretStr(ENCRYPTION_KEY),
        "webhook_secret": SecretStr(WEBHOOK_SECRET),
        "log_level": "WARNING",
    }
    if dinero is not None:
        values |= {
            "dinero_api_url": dinero,
            "dinero_token_url": f"{dinero}/connect/token",
            "dinero_authorize_url": f"{dinero}/connect/authorize",
            "dinero_legacy_token_url": f"{dinero}/dineroapi/oauth/token",
            "dinero_client_id": CLIENT_ID,
            "dinero_client_secret": SecretStr(CLIENT_SECRET),
        }
    values |= overrides
    return Settings(_env_file=None, **values)


def wait_until_up(child: subprocess.Popen[Any], url: str, *, timeout: float = 120) -> None:
    """Poll `url` until it answers 200; fail if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the child process did not start ({url})")
        time.sleep(0.2)

"""What every benchmark sets up the same way: a throw-away database, settings, child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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


# --- CPU accounting (Linux /proc) ---------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second, the unit of /proc's CPU times."""


def proc_cpu(pid: int) -> tuple[int, int, float]:
    """(parent pid, start time in ticks, CPU seconds) of a live process, from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / TICK


class PostgresCpu:
    """CPU seconds the PostgreSQL server (postmaster and children) used since `start()`.

    Backends come and go (a connection pool's overflow connections are closed after use), so
    /proc is sampled every `every` seconds while a run lasts: a process first seen after the
    start counts from zero, and a process that exits loses at most its last interval.
    """

    def __init__(self, postmaster: int | None, every: float = 1.0) -> None:
        self.postmaster = postmaster
        self.every = every
        self._base: dict[tuple[int, int], float] = {}
        self._last: dict[tuple[int, int], float] = {}
        self._task: asyncio.Task[None] | None = None

    def _scan(self) -> dict[tuple[int, int], float]:
        seen: dict[tuple[int, int], float] = {}
        if self.postmaster is None:
            return seen
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent, started, seconds = proc_cpu(int(entry))
                if int(entry) == self.postmaster or parent == self.postmaster:
                    seen[(int(entry), started)] = seconds
        return seen

    def sample(self) -> None:
        self._last.update(self._scan())

    def start(self) -> None:
        self._base = self._scan()
        self._last = dict(self._base)

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.every)
                self.sample()

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        self.sample()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def used(self) -> float:
        return sum(last - self._base.get(key, 0.0) for key, last in self._last.items())


def processes_cpu(pids: list[int]) -> float:
    """CPU seconds these live processes have used (one that is gone counts 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += proc_cpu(pid)[2]
    return total

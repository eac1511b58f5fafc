"""The production shape as real processes: `dinero-bridge sandbox`, `migrate`, `serve --no-worker`
and any number of `dinero-bridge worker`s on one PostgreSQL, talked to over HTTP only.

Every process is the installed `dinero-bridge` command started with `subprocess`, configured by
environment variables exactly as an operator would (`APP_ENV=production`, so no development
default is used). Each writes its log to a file in the stack's directory; a failing test prints
their tails. Nothing here imports the service's internals except `issue_token`, which plays the
expense platform minting a bearer token.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from app.auth import issue_token
from tests.conftest import ENCRYPTION_KEY, JWT_SECRET, WEBHOOK_SECRET
from tests.netutil import free_port

COMMAND = str(Path(sys.executable).with_name("dinero-bridge"))
PRO_ORG = 100001
API_KEY = "sandbox-api-key-100001"
CLIENT_ID, CLIENT_SECRET = "isv_sandbox", "sandbox-secret"  # the sandbox's published demo client
START_TIMEOUT = 60.0


@dataclass
class Process:
    """One `dinero-bridge` command, restartable; its output goes to `log`."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str | None = None
    ready_line: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts}: {' '.join(self.args)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                [COMMAND, *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until `ready_url` answers 200 or `ready_line` appears in this start's log."""
        deadline = time.monotonic() + timeout
        while True:
            if self._ready():
                return
            if self.popen is None or self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited while starting:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not start in {timeout:.0f} s:\n{self.tail()}"
                )
            time.sleep(0.05)

    @property
    def up(self) -> bool:
        """Running, and this start is ready (see `wait_ready`)."""
        return self.alive and self._ready()

    def _ready(self) -> bool:
        if self.ready_url is not None:
            try:
                return httpx.get(self.ready_url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        assert self.ready_line is not None
        text = self.log.read_text(errors="replace")
        return self.ready_line in text.rsplit("===== start ", 1)[-1]

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine is lost."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        self.terminate()
        self.wait_stopped()

    def terminate(self) -> None:
        """SIGTERM: a clean shutdown, as an orchestrator asks for one."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15) -> None:
        """Until a terminated process is gone; SIGKILL if it takes longer than `timeout`."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log lines of every start."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events


@dataclass
class Stack:
    """A sandbox, the API and workers on one database; HTTP clients for the API and the sandbox."""

    directory: Path
    database_url: str
    settings: dict[str, str] = field(default_factory=dict)
    sandbox: Process | None = None
    api: Process | None = None
    workers: list[Process] = field(default_factory=list)
    api_url: str = ""
    dinero_url: str = ""

    # --- processes ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DINERO_", "APP_"))}
        dinero = self.dinero_url
        base |= {
            "APP_ENV": "production",
            "DATABASE_URL": self.database_url,
            "AUTH_JWT_SECRET": JWT_SECRET.get_secret_value(),
            "WEBHOOK_SECRET": WEBHOOK_SECRET.get_secret_value(),
            "TOKEN_ENCRYPTION_KEYS": ENCRYPTION_KEY.get_secret_value(),
            "DINERO_API_URL": dinero,
            "DINERO_AUTHORIZE_URL": f"{dinero}/connect/authorize",
            "DINERO_TOKEN_URL": f"{dinero}/connect/token",
            "DINERO_LEGACY_TOKEN_URL": f"{dinero}/dineroapi/oauth/token",
            "DINERO_CLIENT_ID": CLIENT_ID,
            "DINERO_CLIENT_SECRET": CLIENT_SECRET,
            "DINERO_REDIRECT_URI": f"{self.api_url}/v1/dinero/oauth/callback",
            "PUBLIC_URL": self.api_url,
            "DATA_DIR": str(self.directory / "data"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        return base | self.settings

    def start_sandbox(self, **config: Any) -> None:
        self.launch_sandbox()
        self.sandbox_ready(**config)

    def launch_sandbox(self) -> None:
        """Start `dinero-bridge sandbox` on a free port, without waiting for it."""
        port = free_port()
        self.dinero_url = f"http://127.0.0.1:{port}"
        self.sandbox = Process(
            name="sandbox",
            args=["sandbox", "--port", str(port)],
            env=self.env(),
            log=self.directory / "sandbox.log",
            ready_url=f"{self.dinero_url}/_sandbox",
        )
        self.sandbox.start()

    def sandbox_ready(self, **config: Any) -> None:
        """Until the launched sandbox answers; then apply `config` to it."""
        assert self.sandbox is not None
        self.sandbox.wait_ready()
        if config:
            answer = httpx.patch(f"{self.dinero_url}/_sandbox/config", json=config, timeout=10)
            assert answer.status_code == 200, answer.text

    def migrate(self) -> None:
        done = subprocess.run(
            [COMMAND, "migrate"], env=self.env(), capture_output=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()

    def start_api(self) -> None:
        if not self.api_url:
            self.api_url = f"http://127.0.0.1:{free_port()}"
        port = self.api_url.rsplit(":", 1)[1]
        self.api = Process(
            name="api",
            args=["serve", "--no-worker", "--port", port],
            env=self.env(),
            log=self.directory / "api.log",
            ready_url=f"{self.api_url}/readyz",
        )
        self.api.start()

    def add_worker(self) -> Process:
        worker = Process(
            name=f"worker-{len(self.workers) + 1}",
            args=["worker"],
            env=self.env(),
            log=self.directory / f"worker-{len(self.workers) + 1}.log",
            ready_line='"worker_started"',
        )
        self.workers.append(worker)
        worker.start()
        return worker

    def processes(self) -> list[Process]:
        return [p for p in (self.sandbox, self.api, *self.workers) if p is not None]

    def stop(self) -> None:
        """SIGTERM to every process at once, then wait for each (a shutdown's few seconds are
        spent side by side, not one process after another)."""
        processes = list(reversed(self.processes()))
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait_stopped()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes())

    # --- talking to it ----------------------------------------------------------------------

    def client(self, company: str, role: str = "admin") -> httpx.Client:
        """An API client with the platform's bearer token for `company`."""
        token = issue_token(
            secret=SecretStr(JWT_SECRET.get_secret_value()),
            company_id=company,
            role="admin" if role == "admin" else "member",
            ttl_seconds=3600,
        )
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def dinero(self) -> httpx.Client:
        """The sandbox's own control and inspection API (what is in "Dinero")."""
        return httpx.Client(base_url=f"{self.dinero_url}/_sandbox", timeout=30)


def new_company() -> str:
    return f"co-{uuid.uuid4().hex[:10]}"


def eventually(
    check: Any, *, timeout: float = 30.0, every: float = 0.1, what: str = "condition"
) -> Any:
    """Call `check()` until it returns something truthy; its last answer on timeout fails."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout:.0f} s (last: {answer!r})")
        time.sleep(every)


@contextlib.contextmanager
def running_stack(
    directory: Path,
    database_url: str,
    *,
    workers: int = 2,
    sandbox_config: dict[str, Any] | None = None,
    **settings: str,
) -> Iterator[Stack]:
    """Sandbox, migrate, `serve --no-worker` and `workers` workers; all stopped afterwards.

    The sandbox starts while `migrate` runs (neither needs the other); the API and the workers
    start once the schema is at head and the sandbox is configured, and are waited for
    together.
    """
    stack = Stack(directory=directory, database_url=database_url, settings=dict(settings))
    stack.api_url = f"http://127.0.0.1:{free_port()}"
    try:
        stack.launch_sandbox()
        stack.migrate()
        stack.sandbox_ready(**(sandbox_config or {}))
        stack.start_api()
        for _ in range(workers):
            stack.add_worker()
        assert stack.api is not None
        stack.api.wait_ready()
        for worker in stack.workers:
            worker.wait_ready()
        yield stack
    except BaseException:
        sys.stderr.write(stack.logs() + "\n")
        raise
    finally:
        stack.stop()

"""A newcomer's first run: `dinero-bridge serve` with no configuration at all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent / "dinero-bridge"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"}
    return {k: v for k, v in os.environ.items() if k in keep}


def _start(cwd: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)],
        cwd=cwd,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(proc: subprocess.Popen[str], base: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"serve exited early with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail("serve did not become ready")


def _stop(proc: subprocess.Popen[str]) -> list[dict[str, object]]:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("serve did not stop on Ctrl-C")
    assert proc.returncode == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _dev_token(cwd: Path) -> str:
    result = subprocess.run(
        [str(BIN), "dev-token", "--company", "first-run", "--role", "member"],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.timeout(240)
def test_serve_with_no_configuration_then_restart_reuses_data(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, port)
    try:
        _wait_ready(proc, base)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert "dinero_bridge_http_requests_total" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/sandbox/v1/organizations").status_code == 401
        token = _dev_token(tmp_path)
        first = httpx.get(
            f"{base}/v1/companies/first-run", headers={"Authorization": f"Bearer {token}"}
        )
        assert first.status_code == 200
    finally:
        logs = _stop(proc)

    chosen = " ".join(str(line.get("choice", "")) for line in logs)
    assert "embedded PostgreSQL" in chosen
    assert "sandbox Dinero" in chosen
    assert "AUTH_JWT_SECRET unset" in chosen
    assert any(line.get("event") == "worker_started" for line in logs)
    assert any(line.get("event") == "worker_stopped" for line in logs)
    assert (tmp_path / ".data" / "postgres").is_dir()
    assert not (tmp_path / ".data" / "postgres" / "postmaster.pid").exists()
    secrets_text = (tmp_path / ".data" / "dev-secrets.json").read_text()
    for line in logs:
        for secret in json.loads(secrets_text).values():
            assert secret not in json.dumps(line)

    proc = _start(tmp_path, port)
    try:
        _wait_ready(proc, base)
        token = _dev_token(tmp_path)
        again = httpx.get(
            f"{base}/v1/companies/first-run", headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 200
        assert again.json()["created_at"] == first.json()["created_at"]
    finally:
        logs = _stop(proc)
    chosen = " ".join(str(line.get("choice", "")) for line in logs)
    assert "generated development secrets" not in chosen  # reused, not regenerated


def test_production_refuses_every_development_default(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN), "serve"],
        cwd=tmp_path,
        env={**_clean_env(), "APP_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    for variable in (
        "DATABASE_URL",
        "AUTH_JWT_SECRET",
        "WEBHOOK_SECRET",
        "TOKEN_ENCRYPTION_KEYS",
        "DINERO_CLIENT_ID",
    ):
        assert variable in result.stderr
    assert not (tmp_path / ".data").exists()  # nothing was started or generated

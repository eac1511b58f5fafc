"""A stand-in Dinero server ("sandbox") for tests and local runs.

One implementation, three uses: alone (`uvicorn.run(create_sandbox_app(), port=8765)`), mounted
in the service under a prefix when no Dinero client is configured, and in-process for tests over
`httpx.ASGITransport`. It imports nothing from the rest of `app`.

    app = create_sandbox_app(SandboxConfig(clock=FakeClock()))
    sandbox: Sandbox = app.state.sandbox
"""

from dinero_sandbox.app import create_sandbox_app
from dinero_sandbox.config import Clock, FakeClock, SandboxConfig, SystemClock
from dinero_sandbox.faults import FaultRule, SandboxConnectionDropped, SandboxTimeout
from dinero_sandbox.sandbox import Sandbox
from dinero_sandbox.seed import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_LOGIN,
    PLAIN_ORGANIZATION,
    PRO_ORGANIZATION,
)

__all__ = [
    "API_KEY",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DEMO_LOGIN",
    "PLAIN_ORGANIZATION",
    "PRO_ORGANIZATION",
    "Clock",
    "FakeClock",
    "FaultRule",
    "Sandbox",
    "SandboxConfig",
    "SandboxConnectionDropped",
    "SandboxTimeout",
    "SystemClock",
    "create_sandbox_app",
]

"""The stand-in Dinero server, when it is installed.

The sandbox is its own distribution (`sandbox/` in this repository, package `dinero_sandbox`):
`./dev` and the tests install it, the production image does not. The service never imports it
statically; `serve` with no Dinero configured and `dinero-bridge sandbox` load it here, and say
plainly what to do when it is absent.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import cast

from starlette.types import ASGIApp

SANDBOX_PACKAGE = "dinero_sandbox"


class SandboxNotInstalled(RuntimeError):
    """The no-configuration mode needs the development-only sandbox package."""

    @classmethod
    def missing(cls) -> SandboxNotInstalled:
        return cls(
            "the stand-in Dinero (package dinero-sandbox) is for development and is not "
            "installed here: configure the real Dinero (DINERO_API_URL, DINERO_CLIENT_ID, "
            "DINERO_CLIENT_SECRET), or install the development environment with ./dev setup"
        )


def sandbox_installed() -> bool:
    return importlib.util.find_spec(SANDBOX_PACKAGE) is not None


def sandbox_app() -> ASGIApp:
    """A fresh stand-in Dinero ASGI app, or SandboxNotInstalled with the way out."""
    try:
        module = importlib.import_module(SANDBOX_PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name != SANDBOX_PACKAGE:
            raise
        raise SandboxNotInstalled.missing() from exc
    return cast(ASGIApp, module.create_sandbox_app())

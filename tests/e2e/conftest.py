"""Fixtures for the multi-process tests: a database of their own, a stack of real processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.platform import Platform, running_platform
from tests.e2e.stack import Stack, running_stack

# Fast enough to watch in a test, the same code paths as production's defaults. Workers look
# for due jobs (a backoff's retry, a job put back after its worker died: neither sends a
# notice) every 0.2 s: production's 1 s scaled like the heartbeat (10 s there, 0.5 s here).
FOLLOW_UP_SECONDS = 10
STACK_SETTINGS = {
    "DINERO_RATE_LIMIT_PER_MINUTE": "3000",
    "FOLLOW_UP_INTERVAL_SECONDS": str(FOLLOW_UP_SECONDS),
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_CONCURRENCY": "4",
    "MAX_REQUEST_BYTES": str(4 * 1024 * 1024),  # the body-flood test streams past it
}
SANDBOX_CONFIG = {"rate_limit_per_minute": 6000}


@pytest.fixture(scope="package")
def platform() -> Iterator[Platform]:
    """The platform's webhook endpoint the workers deliver `export_item.updated` to."""
    with running_platform() as receiver:
        yield receiver


@pytest.fixture(scope="package")
def stack(
    make_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    platform: Platform,
) -> Iterator[Stack]:
    """`dinero-bridge sandbox`, `migrate`, `serve --no-worker` and two `worker`s."""
    directory: Path = tmp_path_factory.mktemp("stack")
    with running_stack(
        directory,
        make_database(),
        workers=2,
        sandbox_config=SANDBOX_CONFIG,
        PLATFORM_WEBHOOK_URL=platform.url,
        **STACK_SETTINGS,
    ) as running:
        yield running

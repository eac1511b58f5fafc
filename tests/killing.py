"""A worker "killed" at a named checkpoint of the runner, the follow-up cycle, the outbox or a
reversal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class Killed(BaseException):
    """The worker died here (not an Exception: nothing in the service may catch it)."""


def kill_at(point: str) -> Callable[[str], Awaitable[None]]:
    """A `checkpoint=` hook that kills the worker (raises Killed) when it reaches `point`."""

    async def checkpoint(name: str) -> None:
        if name == point:
            raise Killed(name)

    return checkpoint

"""How an item's pass ends when it does not go through: it waits, fails, or tries again later."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from app.backoff import EXPORT_ITEM
from app.connection.gateway import NotConnected, ReauthRequired
from app.dinero.errors import DineroApiError, DineroRateLimited
from app.exports.checks import Fail, Wait, posting_date
from app.exports.closed import remember
from app.exports.context import Context, save
from app.exports.models import ExportItem, ItemStatus, Step
from app.receipts import ReceiptError

log = structlog.get_logger(__name__)

RATE_LIMIT_PAUSE_SECONDS: Final = 60.0


def connection_wait(exc: ReauthRequired | NotConnected) -> Wait:
    if isinstance(exc, ReauthRequired):
        return Wait("reauth_required", "Dinero no longer accepts the connection: reconnect Dinero.")
    return Wait("connect_dinero", "Dinero is not connected: connect Dinero.")


async def wait_all(ctx: Context, items: Sequence[ExportItem], wait: Wait) -> None:
    for item in items:
        await set_waiting(ctx, item, wait)


async def set_waiting(ctx: Context, item: ExportItem, wait: Wait) -> None:
    ctx.count("waiting")
    if item.waiting_code == wait.code and item.waiting_message == wait.message:
        return
    await save(
        ctx.services,
        item,
        status=ItemStatus.QUEUED if item.step == Step.NEW else ItemStatus.EXPORTING,
        waiting_code=wait.code,
        waiting_message=wait.message,
    )


async def fail(ctx: Context, item: ExportItem, failure: Fail) -> None:
    ctx.count("failed")
    log.warning(
        "export_item_failed", item_id=str(item.id), code=failure.code, reason=failure.message
    )
    await save(
        ctx.services,
        item,
        status=ItemStatus.FAILED,
        waiting_code=None,
        waiting_message=None,
        failure_code=failure.code,
        failure_message=failure.message,
        dinero_message=failure.dinero_message,
        next_attempt_at=None,
    )


async def transient(ctx: Context, item: ExportItem, exc: Exception, *, count: bool = True) -> None:
    """Try again later with backoff; a 429 does not count as an attempt."""
    attempts = item.attempts + (1 if count else 0)
    delay = EXPORT_ITEM.delay(attempts)
    if isinstance(exc, DineroRateLimited):
        delay = timedelta(seconds=RATE_LIMIT_PAUSE_SECONDS)
        ctx.paused = True
        ctx.later(RATE_LIMIT_PAUSE_SECONDS)
    ctx.count("retry_later")
    log.info(
        "export_item_retry_later", item_id=str(item.id), delay=delay.total_seconds(), error=str(exc)
    )
    if isinstance(exc, ReceiptError):
        # The receipt host failed, not Dinero: say so (its message names the host).
        waiting_code, waiting_message = (
            "receipt_host_unavailable",
            f"The receipt could not be downloaded; trying again shortly ({exc.message})",
        )
    else:
        waiting_code, waiting_message = (
            "dinero_unavailable",
            f"Dinero did not answer as expected; trying again shortly ({exc}).",
        )
    await save(
        ctx.services,
        item,
        attempts=attempts,
        next_attempt_at=datetime.now(UTC) + delay,
        failure_message=None,
        waiting_code=waiting_code,
        waiting_message=waiting_message,
    )


async def year_refused(ctx: Context, item: ExportItem, exc: DineroApiError) -> None:
    """Dinero refused the item's date as closed: its year is remembered (so the year's other
    items wait without a request, app/exports/closed.py) and the item waits for it."""
    ctx.books, wait = await remember(
        ctx.services, ctx.company_id, ctx.books, posting_date(ctx.books, item), exc
    )
    await set_waiting(ctx, item, wait)


def dinero_failure(exc: DineroApiError) -> Fail:
    message = exc.message or str(exc)
    fields = exc.fields_text
    return Fail(
        "dinero_rejected",
        f"Dinero refused the export: {message}" + (f" ({fields})" if fields else ""),
        dinero_message=message + (f" ({fields})" if fields else ""),
    )

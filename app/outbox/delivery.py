"""Delivering the outbox to the platform: signed, in order per item, retried, never dropped early.

One delivery pass (job `outbox.deliver`, one at a time) takes the due events, for each item only
its oldest undelivered one, oldest first, and POSTs each to PLATFORM_WEBHOOK_URL signed per
Standard Webhooks (`webhook-id` = the event id, the same on every attempt, so the platform can
drop a repeat; `webhook-timestamp` and `webhook-signature` fresh per attempt). A 2xx marks the
event delivered. Anything else is retried with exponential backoff (5 s doubling, capped at 10
minutes, with jitter) for 72 hours from the first attempt, then given up (logged, kept).

A connection error, a timeout, a 3xx/5xx, 408 or 429 means the platform is unavailable: the pass
stops at once (the other events keep their place and their retry budget) and the next pass
tries the oldest event again. Another 4xx concerns that event only: it backs off, its item's
later events wait behind it, other items go on.

Delivery is at least once: a worker that dies after the platform answered but before the event
was marked sends it again (same `webhook-id`). With no PLATFORM_WEBHOOK_URL nothing is sent and
events are kept, so setting the URL later delivers the backlog (pruned after 30 days).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx
import structlog
from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from standardwebhooks.webhooks import Webhook

from app.backoff import WEBHOOK_EVENT
from app.ops.metrics import WEBHOOKS_SENT
from app.outbox.models import OutboxEvent
from app.outbox.schemas import ExportItemUpdated, item_update
from app.services import Services

log = structlog.get_logger(__name__)

BATCH: Final = 100
REQUEST_TIMEOUT_SECONDS: Final = 10.0
TIME_SLICE_SECONDS: Final = 45.0
GIVE_UP_AFTER: Final = timedelta(hours=72)
"""Retried this long after the first attempt (an outage of an hour, or a day, loses nothing)."""

Checkpoint = Callable[[str], Awaitable[None]]
"""Awaited at a named point of a pass (`after_send`); tests "kill" the worker there."""


@dataclass
class DeliveryResult:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    platform_unavailable: bool = False
    more_due: bool = False
    """The pass ended on its time slice with events still due."""
    configured: bool = True


def body(event: OutboxEvent) -> str:
    """The JSON sent for an event (the same bytes on every attempt)."""
    data = item_update(
        company_id=event.company_id, previous_status=event.previous_status, item=event.item
    )
    return ExportItemUpdated(
        type="export_item.updated", timestamp=data.changed_at, data=data
    ).model_dump_json()


def signed_headers(signer: Webhook, event_id: uuid.UUID, content: str) -> dict[str, str]:
    sent_at = datetime.now(UTC)
    msg_id = str(event_id)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(msg_id, sent_at, content),
    }


def _pending() -> ColumnElement[bool]:
    return and_(OutboxEvent.delivered_at.is_(None), OutboxEvent.given_up_at.is_(None))


async def _due(services: Services, now: datetime) -> list[OutboxEvent]:
    """Due events that are the oldest undelivered one of their item, oldest first."""
    earlier = aliased(OutboxEvent)
    blocked = exists().where(
        earlier.item_id == OutboxEvent.item_id,
        earlier.seq < OutboxEvent.seq,
        earlier.delivered_at.is_(None),
        earlier.given_up_at.is_(None),
    )
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(OutboxEvent)
            .where(
                _pending(),
                (OutboxEvent.next_attempt_at.is_(None)) | (OutboxEvent.next_attempt_at <= now),
                ~blocked,
            )
            .order_by(OutboxEvent.seq)
            .limit(BATCH)
        )
        return list(rows.scalars())


async def next_due_at(services: Services) -> datetime | None:
    """When the earliest undelivered event may be tried (None: nothing waits)."""
    async with services.sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.min(func.coalesce(OutboxEvent.next_attempt_at, func.now())),
                ).where(_pending())
            )
        ).one()
    count, at = row
    return at if count else None


async def _mark(services: Services, event_id: uuid.UUID, **values: object) -> None:
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id).values(**values)
        )


def _unavailable(status: int | None) -> bool:
    """Does this answer say the platform is down (rather than refusing this one event)?"""
    if status is None:
        return True
    return not (400 <= status < 500) or status in (408, 429)


async def deliver_pending(
    services: Services, *, checkpoint: Checkpoint | None = None
) -> DeliveryResult:
    """One delivery pass (see the module docstring); `checkpoint` as the runner's."""
    settings = services.settings
    url = settings.platform_webhook_url
    if url is None:
        return DeliveryResult(configured=False)
    secret = settings.platform_webhook_secret or services.runtime.webhook_secret
    signer = Webhook(secret.get_secret_value())
    deadline = time.monotonic() + TIME_SLICE_SECONDS
    result = DeliveryResult()
    while True:
        events = await _due(services, datetime.now(UTC))
        if not events:
            return result
        for event in events:
            if time.monotonic() > deadline:
                result.more_due = True
                return result
            if not await _deliver(services, signer, url, event, result, checkpoint):
                return result


async def _deliver(
    services: Services,
    signer: Webhook,
    url: str,
    event: OutboxEvent,
    result: DeliveryResult,
    checkpoint: Checkpoint | None,
) -> bool:
    """Send one event and record the outcome; False when the platform is unavailable."""
    content = body(event)
    status: int | None = None
    error: str | None = None
    try:
        response = await services.http.post(
            url,
            content=content.encode(),
            headers=signed_headers(signer, event.id, content),
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {response.text[:200]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    if checkpoint is not None:
        await checkpoint("after_send")
    now = datetime.now(UTC)
    attempts = event.attempts + 1
    first = event.first_attempt_at or now
    if error is None:
        await _mark(
            services,
            event.id,
            delivered_at=now,
            attempts=attempts,
            first_attempt_at=first,
            last_status_code=status,
            last_error=None,
        )
        result.delivered += 1
        WEBHOOKS_SENT.labels(outcome="delivered").inc()
        return True
    result.failed += 1
    WEBHOOKS_SENT.labels(outcome="failed").inc()
    if now - first >= GIVE_UP_AFTER:
        await _mark(
            services,
            event.id,
            given_up_at=now,
            attempts=attempts,
            first_attempt_at=first,
            last_status_code=status,
            last_error=error,
        )
        result.given_up += 1
        WEBHOOKS_SENT.labels(outcome="given_up").inc()
        log.error(
            "webhook_given_up", event_id=str(event.id), item_id=str(event.item_id), error=error
        )
    else:
        await _mark(
            services,
            event.id,
            attempts=attempts,
            first_attempt_at=first,
            next_attempt_at=now + WEBHOOK_EVENT.delay(attempts),
            last_status_code=status,
            last_error=error,
        )
        log.info(
            "webhook_retry_later",
            event_id=str(event.id),
            attempts=attempts,
            status=status,
            error=error,
        )
    if _unavailable(status):
        result.platform_unavailable = True
        return False
    return True


async def prune(services: Services, *, now: datetime | None = None) -> int:
    """Forget delivered and given-up events after 7 days; undelivered ones after 30 days while
    no URL is set (nothing would ever send them)."""
    moment = now or datetime.now(UTC)
    done_before = moment - timedelta(days=7)
    conditions = [
        OutboxEvent.delivered_at < done_before,
        OutboxEvent.given_up_at < done_before,
    ]
    if services.settings.platform_webhook_url is None:
        conditions.append(and_(_pending(), OutboxEvent.created_at < moment - timedelta(days=30)))
    async with services.sessionmaker() as session, session.begin():
        done = await session.execute(delete(OutboxEvent).where(or_(*conditions)))
    deleted = int(getattr(done, "rowcount", 0) or 0)
    if deleted:
        log.info("outbox_pruned", events=deleted)
    return deleted

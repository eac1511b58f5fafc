"""Create a deposit account ("Beholdning (fx bank)") in Dinero's Kontoplan, sync, and map it.

Instead of leaving the setup to add the account by hand in Dinero, the admin names it here. The
request talks to Dinero while it is answered (like connecting with an API key), with no row of
its own written before Dinero has answered:

1. A number already used in the synced chart is refused before Dinero hears of anything.
2. One creation per company at a time (a session-level advisory lock on a connection of its
   own, so no transaction stays open while Dinero answers); a second one at the same moment is
   told to try again.
3. Dinero's chart is read first: an account that is already there (the same number and name,
   or, without a number, a deposit account of that name) is the one a repeated request meant,
   so nothing new is created; a number Dinero uses for anything else is refused.
4. Only then `POST accounts/deposit`. Dinero answers 200 with no body and has no idempotency
   key, so after an uncertain outcome (timeout, dropped connection) the deposit accounts are
   read again: there, it was created; not there, nothing was, and the admin may simply retry.
5. The chart is synced right away (the same sync as `POST …/dinero/sync`), then, with
   `use_as`, the account becomes that setting in the request's own transaction (a new one:
   the reads of steps 1-2 are committed before Dinero is called).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.chart import service as chart
from app.chart.models import DineroAccount
from app.chart.sync import sync_chart
from app.connection.gateway import ReauthRequired, require_connected
from app.connection.models import DineroConnection, get_connection
from app.db import release_transaction, try_advisory_lock
from app.dinero.client import DineroClient
from app.dinero.errors import (
    DineroError,
    DineroOutcomeUnknown,
    DineroTransportError,
    DineroUnauthorized,
)
from app.dinero.models import DepositAccount, DepositAccountCreate, EntryAccount
from app.dinero.pacing import INTERACTIVE_MAX_WAIT_SECONDS, Lane, PacerBusy, waiting_at_most
from app.errors import AppError, Conflict, DineroBusy, DineroRefused, DineroUnavailable
from app.services import Services

log = structlog.get_logger(__name__)

LOCK_NAMESPACE: Final = 0x44455041  # "DEPA": advisory-lock namespace of account creations
DEPOSIT_RANGE: Final = range(55000, 56000)
"""Where Dinero keeps deposit accounts; a number is chosen from here when none is given."""
SYNC_ATTEMPTS: Final = 20
SYNC_RETRY_SECONDS: Final = 0.5
"""A sync already running when the account was created may have read the chart before it:
wait for it to end and sync again (up to SYNC_ATTEMPTS times)."""


@dataclass(frozen=True)
class Outcome:
    account_number: int
    name: str
    created: bool
    mapped_as: str | None


def _same_name(a: str | None, b: str) -> bool:
    return (a or "").strip().casefold() == b.strip().casefold()


async def _synced_numbers(session: AsyncSession, company_id: str) -> dict[int, DineroAccount]:
    rows = await session.execute(
        select(DineroAccount).where(DineroAccount.company_id == company_id, DineroAccount.present)
    )
    return {row.account_number: row for row in rows.scalars()}


def _taken(number: int, holder: str | None) -> Conflict:
    return Conflict(
        f"Account number {number} is already used in Dinero's chart"
        + (f" ({holder})." if holder else ".")
        + " Choose another number, or leave it out to take the first free one in 55000-55999.",
        code="account_number_taken",
        extra={"account_number": number},
    )


def _dinero_failure(exc: DineroError, doing: str) -> AppError:
    if isinstance(exc, DineroUnauthorized):
        return ReauthRequired(
            "Dinero no longer accepts the connection; reconnect Dinero.",
            extra={"dinero_message": exc.dinero_message},
        )
    if exc.transient or isinstance(exc, DineroTransportError | DineroOutcomeUnknown):
        return DineroUnavailable(
            f"Dinero could not be reached to {doing}; nothing was created. Try again shortly.",
            extra={"dinero_message": exc.dinero_message},
        )
    return DineroRefused(
        f"Dinero refused to {doing}: {exc}", extra={"dinero_message": exc.dinero_message}
    )


async def _read_chart(client: DineroClient) -> tuple[list[EntryAccount], list[DepositAccount]]:
    try:
        entry, deposit = await asyncio.gather(client.entry_accounts(), client.deposit_accounts())
    except DineroError as exc:
        raise _dinero_failure(exc, "read the chart of accounts") from exc
    return entry, deposit


async def _deposit_in_dinero(client: DineroClient, number: int) -> DepositAccount | None:
    try:
        accounts = await client.deposit_accounts()
    except DineroError as exc:
        raise _dinero_failure(exc, "read the deposit accounts") from exc
    return next((a for a in accounts if a.account_number == number), None)


def _choose(
    name: str,
    number: int | None,
    synced: dict[int, DineroAccount],
    entry: list[EntryAccount],
    deposit: list[DepositAccount],
) -> tuple[int, bool]:
    """The number to use and whether Dinero already has the account (a repeated request)."""
    used: dict[int, str | None] = {n: a.name for n, a in synced.items()}
    used.update({a.account_number: a.name for a in entry})
    deposits = {a.account_number: a for a in deposit}
    used.update({n: a.name for n, a in deposits.items()})
    if number is not None:
        existing = deposits.get(number)
        if existing is not None and _same_name(existing.name, name):
            return number, True
        if number in used:
            raise _taken(number, used[number])
        return number, False
    same = [a for a in deposit if _same_name(a.name, name)]
    if same:
        return min(a.account_number for a in same), True
    free = next((n for n in DEPOSIT_RANGE if n not in used), None)
    if free is None:
        raise Conflict(
            "Every number in 55000-55999 is used in Dinero's chart; give the number to use.",
            code="no_free_deposit_number",
        )
    return free, False


async def _create(client: DineroClient, number: int, name: str) -> None:
    try:
        await client.create_deposit_account(DepositAccountCreate(number=number, name=name))
    except (DineroOutcomeUnknown, DineroTransportError) as exc:
        # Maybe created, maybe not: Dinero's chart says which.
        found = await _deposit_in_dinero(client, number)
        if found is None or not _same_name(found.name, name):
            raise _dinero_failure(exc, "create the deposit account") from exc
        log.info("deposit_account_found_after_uncertain_create", account_number=number)
    except DineroError as exc:
        raise _dinero_failure(exc, "create the deposit account") from exc


async def _sync(services: Services, company_id: str) -> None:
    """Sync the chart now; a sync already running may predate the account, so wait it out."""
    for _ in range(SYNC_ATTEMPTS):
        try:
            outcome = await sync_chart(services, company_id, max_wait=INTERACTIVE_MAX_WAIT_SECONDS)
        except PacerBusy as busy:
            wait = DineroBusy.of(busy)
            raise DineroBusy.of(
                busy,
                "The account was created in Dinero, but the organization's Dinero request "
                f"budget is used up for now, so the chart is not synced yet. Repeat the request "
                f"in {wait.retry_after} s (it creates nothing twice), or sync the chart.",
            ) from busy
        if outcome.status == "succeeded":
            return
        if outcome.status == "failed":
            raise DineroUnavailable(
                "The account was created in Dinero, but the chart could not be synced "
                f"({outcome.error_message}). Sync again, then choose it in the settings.",
                code="chart_sync_failed",
            )
        await asyncio.sleep(SYNC_RETRY_SECONDS)
    raise Conflict(
        "The account was created in Dinero; the chart is being synced. Choose it in the "
        "settings in a moment.",
        code="chart_sync_busy",
    )


async def _create_and_sync(
    services: Services,
    company_id: str,
    connection: DineroConnection,
    name: str,
    number: int | None,
    synced: dict[int, DineroAccount],
) -> tuple[int, bool]:
    """The account's number, and whether it existed already; created in Dinero if not, and
    the chart synced so it can be mapped."""
    async with try_advisory_lock(services.engine, LOCK_NAMESPACE, company_id) as got:
        if not got:
            raise Conflict(
                "Another deposit account is being created for this company; try again shortly.",
                code="deposit_account_busy",
            )
        client = services.dinero.client_for(
            connection, lane=Lane.INTERACTIVE, max_wait=INTERACTIVE_MAX_WAIT_SECONDS
        )
        entry, deposit = await _read_chart(client)
        chosen, existed = _choose(name, number, synced, entry, deposit)
        if not existed:
            await _create(client, chosen, name)
            log.info("deposit_account_created", company_id=company_id, account_number=chosen)
        await _sync(services, company_id)
    return chosen, existed


async def create_deposit_account(
    *,
    services: Services,
    session: AsyncSession,
    company_id: str,
    name: str,
    number: int | None,
    use_as: str | None,
) -> Outcome:
    """Create (or find, when a repeated request already did) the account, sync, and map it."""
    name = name.strip()
    connection = require_connected(
        await get_connection(session=session, company_id=company_id),
        before="creating accounts in it",
    )
    synced = await _synced_numbers(session, company_id)
    if number is not None and number in synced and not _same_name(synced[number].name, name):
        raise _taken(number, synced[number].name)  # refused before Dinero hears of anything
    # Only read so far: end the request's transaction, so none stays open while Dinero answers
    # and the chart syncs (seconds); the mapping below is written in a new one.
    await release_transaction(session)
    # Up to eight calls (two reads, the create, the sync's five): they wait for the
    # organization's budget INTERACTIVE_MAX_WAIT_SECONDS in all, not each.
    with waiting_at_most(INTERACTIVE_MAX_WAIT_SECONDS):
        chosen, existed = await _create_and_sync(
            services, company_id, connection, name, number, synced
        )
    mapped_as = None
    if use_as is not None:
        mapped_as = f"{use_as}_account"
        settings = await chart.get_settings(session, company_id)
        values = {field: getattr(settings, field) for field in chart.MAPPING_FIELDS}
        values[mapped_as] = chosen
        await chart.put_settings(session, company_id, values)
        await jobs.wake_exports(session, company_id)  # items waiting for a mapping may go now
    return Outcome(account_number=chosen, name=name, created=not existed, mapped_as=mapped_as)

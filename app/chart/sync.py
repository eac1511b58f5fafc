"""Chart sync: read Dinero's accounts and VAT types, and apply only what changed.

One sync per company at a time (a session-level advisory lock held on its own connection, not a
transaction: no transaction stays open while Dinero answers). The five lists are read first; only
when all five arrived is anything written, in one transaction, so a failed sync changes nothing
already synced and only records why it failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import Any, Final, TypeVar

import structlog
from sqlalchemy import TextClause, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.chart.models import NO_VAT, Category, ChartSync, DineroAccount, TaxCode
from app.connection.gateway import DineroGateway, NotConnected, ReauthRequired
from app.connection.models import ConnectionStatus, DineroConnection, get_connection
from app.db import try_advisory_lock
from app.dinero.errors import DineroError
from app.dinero.models import AccountingYear, DepositAccount, EntryAccount, VatType
from app.dinero.pacing import Lane, PacerBusy
from app.history import service as history
from app.services import Services

log = structlog.get_logger(__name__)

LOCK_NAMESPACE = 0x43485254  # "CHRT": advisory-lock namespace of chart syncs
NO_VAT_NAME = "Ingen moms"
SYNC_PROBLEM_PREFIX = "chart_sync_"
RATE_PLACES = Decimal("0.0001")
CHART_REQUESTS = 5


@dataclass
class SyncOutcome:
    status: str
    """succeeded, failed or already_running."""
    requests: int = 0
    changes: int = 0
    error_code: str | None = None
    error_message: str | None = None
    summary: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Chart:
    entry: list[EntryAccount]
    purchase: list[EntryAccount]
    deposit: list[DepositAccount]
    vat_types: list[VatType]
    years: list[AccountingYear]

    @cached_property
    def accounts(self) -> dict[int, dict[str, Any]]:
        """The three account lists merged by account number (made once: the digest and the
        apply step both use it)."""
        return _incoming_accounts(self)


async def read_chart(
    gateway: DineroGateway, connection: DineroConnection, *, max_wait: float | None = None
) -> Chart:
    """The lists Dinero has (none is paged), read concurrently: one request each, five in all.

    With `max_wait`, a request that gets no slot from the pacer in time raises PacerBusy.
    """
    client = gateway.client_for(connection, lane=Lane.INTERACTIVE, max_wait=max_wait)
    # All five are awaited before a failure is raised: none is left running (or its error
    # unread) behind a sync that already gave up.
    entry, purchase, deposit, vat_types, years = await asyncio.gather(
        client.entry_accounts(),
        client.purchase_accounts(),
        client.deposit_accounts(),
        client.vat_types(),
        client.accounting_years(),
        return_exceptions=True,
    )
    return Chart(
        entry=_ok(entry),
        purchase=_ok(purchase),
        deposit=_ok(deposit),
        vat_types=_ok(vat_types),
        years=_ok(years),
    )


Result = TypeVar("Result")


def _ok(result: Result | BaseException) -> Result:
    if isinstance(result, BaseException):
        raise result
    return result


async def sync_chart(
    services: Services, company_id: str, *, max_wait: float | None = None
) -> SyncOutcome:
    """Run one sync for the company now (the job calls this).

    `max_wait` bounds each request's wait for the organization's Dinero budget (a request
    passes INTERACTIVE_MAX_WAIT_SECONDS; the job waits as long as it takes): past it PacerBusy
    is raised, and the sync state is left as it was before this sync started.
    """
    async with try_advisory_lock(services.engine, LOCK_NAMESPACE, company_id) as got:
        if not got:
            log.info("chart_sync_already_running", company_id=company_id)
            return SyncOutcome(status="already_running")
        return await _sync_locked(services, company_id, max_wait=max_wait)


async def _sync_locked(
    services: Services, company_id: str, *, max_wait: float | None
) -> SyncOutcome:
    started = datetime.now(UTC)
    async with services.sessionmaker() as session, session.begin():
        connection = await get_connection(session=session, company_id=company_id)
    if connection is None or connection.status == ConnectionStatus.NOT_CONNECTED:
        message = "Connect Dinero first."
        return await _failed(services, company_id, "not_connected", message, started=started)
    # The sync is marked running while Dinero answers, not before asking: one short transaction
    # of its own, over long before the lists arrive (the sync's lock keeps others out).
    read, begun = await asyncio.gather(
        read_chart(services.dinero, connection, max_wait=max_wait),
        _begin(services, company_id, started),
        return_exceptions=True,
    )
    before, known, stored = _ok(begun)
    try:
        chart = _ok(read)
    except PacerBusy:
        # Nothing was asked of Dinero that is worth keeping: this sync did not happen.
        async with services.sessionmaker() as session, session.begin():
            state = await sync_state(session, company_id)
            state.status, state.started_at = before
        raise
    except (ReauthRequired, NotConnected) as exc:
        return await _failed(services, company_id, exc.code, exc.detail)
    except DineroError as exc:
        message = f"Dinero could not be read: {exc}"
        return await _failed(services, company_id, "chart_sync_failed", message)
    digest = chart_digest(chart)
    unchanged = digest == known
    async with services.sessionmaker() as session, session.begin():
        summary = (
            empty_summary() if unchanged else await apply_chart(session, company_id, chart, stored)
        )
        changes = sum(summary.values())
        years = [
            {"name": y.name or "", "from": y.from_date.isoformat(), "to": y.to_date.isoformat()}
            for y in chart.years
            if y.from_date is not None and y.to_date is not None
        ]
        await session.execute(
            _SUCCEEDED,
            {
                "company_id": company_id,
                "now": datetime.now(UTC),
                "changes": changes,
                "digest": digest,
                "compared": not unchanged,
                "years": json.dumps(years),
                "prefix": SYNC_PROBLEM_PREFIX,
            },
        )
        await jobs.wake_exports(session, company_id)  # items waiting on the chart may go now
    log.info("chart_synced", company_id=company_id, changes=changes, **summary)
    return SyncOutcome(
        status="succeeded", requests=CHART_REQUESTS, changes=changes, summary=summary
    )


_SUCCEEDED = text(
    """
    WITH state AS (
        UPDATE chart_syncs
        SET status = 'succeeded', finished_at = :now, succeeded_at = :now, error_code = NULL,
            error_message = NULL, changes = :changes, chart_digest = :digest,
            compared_at = CASE WHEN :compared THEN :now ELSE compared_at END,
            accounting_years = CAST(:years AS jsonb)
        WHERE company_id = :company_id
    )
    UPDATE dinero_connections
    SET last_synced_at = :now, updated_at = now(),
        problem_message = CASE WHEN starts_with(problem_code, :prefix) THEN NULL
            ELSE problem_message END,
        problem_code = CASE WHEN starts_with(problem_code, :prefix) THEN NULL ELSE problem_code END
    WHERE company_id = :company_id
    """
)
"""A sync that succeeded: its state, and the connection's last sync time and cleared sync
problem, in one statement (what the ORM wrote in two UPDATEs after two reads)."""


async def _begin(
    services: Services, company_id: str, started: datetime
) -> tuple[tuple[str, datetime | None], str | None, StoredChart | None]:
    """Mark the sync running. Returns the state it was in before (put back if the sync gives up
    waiting for the pacer); the digest of the chart last compared, if that was recent (the same
    chart again needs no compare); and, without one, the stored chart the sync compares with.

    Reading the stored chart before Dinero's lists have arrived is safe: only a sync writes what
    is compared (every column of accounts and tax codes, a category's Dinero columns), and this
    sync holds the company's lock; the admin's own columns of a category are read again by the
    statement that writes it.
    """
    async with services.sessionmaker() as session, session.begin():
        state = await sync_state(session, company_id)
        before = (state.status, state.started_at)
        state.status = "running"
        state.started_at = started
        fresh = state.compared_at is not None and started - state.compared_at < COMPARE_EVERY
        known = state.chart_digest if fresh else None
        stored = None if known is not None else await read_stored_chart(session, company_id)
    return before, known, stored


async def _failed(
    services: Services,
    company_id: str,
    code: str,
    message: str,
    *,
    started: datetime | None = None,
) -> SyncOutcome:
    """Record why the sync failed, on the sync state and on the connection; nothing else.
    `started`: when a sync that failed before it was marked running started."""
    async with services.sessionmaker() as session, session.begin():
        state = await sync_state(session, company_id)
        if started is not None:
            state.started_at = started
        state.status = "failed"
        state.finished_at = datetime.now(UTC)
        state.error_code = code
        state.error_message = message
        conn = await get_connection(session=session, company_id=company_id)
        if conn is not None and conn.status == ConnectionStatus.CONNECTED:
            conn.problem_code = f"{SYNC_PROBLEM_PREFIX}failed"
            conn.problem_message = f"The last chart sync failed: {message}"
    log.warning("chart_sync_failed", company_id=company_id, code=code, reason=message)
    return SyncOutcome(status="failed", error_code=code, error_message=message)


async def sync_state(session: AsyncSession, company_id: str) -> ChartSync:
    """The company's sync row, locked for this transaction (created on first use).

    Two requests may create it at once (two syncs asked for before any ran): the insert does
    nothing for the second, which then waits for and locks the first one's row.
    """
    state = await session.get(ChartSync, company_id, with_for_update=True)
    if state is None:
        await session.execute(
            pg_insert(ChartSync)
            .values(company_id=company_id, status="never", changes=0)
            .on_conflict_do_nothing(index_elements=[ChartSync.company_id])
        )
        state = await session.get(ChartSync, company_id, with_for_update=True)
        assert state is not None  # inserted now, or by the request that won
    return state


# --- applying a chart ---------------------------------------------------------------------------

COMPARE_EVERY: Final = timedelta(days=1)
"""A sync compares Dinero's chart with the stored rows at least this often, even when Dinero
sent the same chart as last time (the digest's shortcut never goes longer without a check)."""
DIGEST_VERSION: Final = "2"
"""Part of every digest: a change to what a sync stores from the chart changes it, so the next
sync compares."""
_LISTED_ACCOUNT = attrgetter("account_number", "name", "vat_code", "category", "is_hidden")
"""What the sync stores of an entry or purchase account (`_incoming_accounts` reads these)."""
_LISTED_DEPOSIT = attrgetter(
    "account_number",
    "name",
    "is_default",
    "is_hidden",
    "bank_registration_number",
    "bank_account_number",
    "bank_iban_number",
)
"""What the sync stores of a deposit account."""
_NUMBER = itemgetter(0)


def chart_digest(chart: Chart) -> str:
    """SHA-256 of everything a sync stores from the chart: the fields it reads of each account
    list and of the VAT types, each list sorted by account number (by code).

    Only a sync writes those columns, holding the company's lock, so when Dinero sends a chart
    with the digest stored by the last sync that compared, the stored rows already match it and
    there is nothing to read, compare or write (accounting years are compared apart). The lists
    are hashed as Dinero sent them, not merged: equal lists merge into equal rows, and a no-op
    resync (every company's hourly case) skips the merge (~3 ms of a 2,000-account chart).
    """
    lists = (
        sorted(map(_LISTED_ACCOUNT, chart.entry), key=_NUMBER),
        sorted(map(_LISTED_ACCOUNT, chart.purchase), key=_NUMBER),
        sorted(map(_LISTED_DEPOSIT, chart.deposit), key=_NUMBER),
        sorted((v.vat_code or "", v.name or "", str(v.vat_rate)) for v in chart.vat_types),
    )
    # repr of tuples of str, int, bool and None: exact, and made in C (no JSON encoder).
    return hashlib.sha256(repr((DIGEST_VERSION, lists)).encode()).hexdigest()


def empty_summary() -> dict[str, int]:
    """A sync's counts of what changed, by kind: nothing yet."""
    return dict.fromkeys(
        (
            "accounts_added",
            "accounts_updated",
            "accounts_removed",
            "categories_added",
            "categories_updated",
            "categories_deactivated",
            "tax_codes_added",
            "tax_codes_updated",
            "tax_codes_removed",
        ),
        0,
    )


def _incoming_accounts(chart: Chart) -> dict[int, dict[str, Any]]:
    """Dinero's three account lists merged by account number."""
    merged: dict[int, dict[str, Any]] = {}

    def base(number: int) -> dict[str, Any]:
        return merged.setdefault(
            number,
            {
                "is_entry": False,
                "is_purchase": False,
                "is_deposit": False,
                "is_default_deposit": False,
                "hidden_in_dinero": False,
                "vat_code": None,
                "category": None,
                "bank_registration_number": None,
                "bank_account_number": None,
                "bank_iban_number": None,
            },
        )

    for account in [*chart.entry, *chart.purchase]:
        row = base(account.account_number)
        row["name"] = account.name or row.get("name") or str(account.account_number)
        row["vat_code"] = account.vat_code or row["vat_code"]
        row["category"] = account.category or row["category"]
        row["hidden_in_dinero"] = row["hidden_in_dinero"] or account.is_hidden
    for account in chart.entry:
        merged[account.account_number]["is_entry"] = True
    for account in chart.purchase:
        merged[account.account_number]["is_purchase"] = True
    for deposit in chart.deposit:
        row = base(deposit.account_number)
        row["name"] = deposit.name or row.get("name") or str(deposit.account_number)
        row["is_deposit"] = True
        row["is_default_deposit"] = deposit.is_default
        row["hidden_in_dinero"] = row["hidden_in_dinero"] or deposit.is_hidden
        row["bank_registration_number"] = deposit.bank_registration_number
        row["bank_account_number"] = deposit.bank_account_number
        row["bank_iban_number"] = deposit.bank_iban_number
    return merged


def _differs(stored: dict[str, Any], values: dict[str, Any]) -> bool:
    return any(stored[name] != value for name, value in values.items())


def _rows_json(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array: a single parameter PostgreSQL turns back into rows
    (`jsonb_to_recordset`), so a statement writes thousands of rows without per-row parameters."""
    return json.dumps(rows, separators=(",", ":"), default=str)  # str: a Decimal rate


_UPSERT_TAX_CODES = text(
    """
    INSERT INTO tax_codes (company_id, code, name, rate, present)
    SELECT :company_id, r.code, r.name, r.rate, true
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(code text, name text, rate numeric)
    ON CONFLICT (company_id, code) DO UPDATE
    SET name = excluded.name, rate = excluded.rate, present = true, updated_at = now()
    """
)
"""New and changed tax codes (only those: a sync that changes nothing sends no write)."""

_ACCOUNT_COLUMNS = (
    ("account_number", "integer"),
    ("name", "text"),
    ("vat_code", "text"),
    ("category", "text"),
    ("is_entry", "boolean"),
    ("is_purchase", "boolean"),
    ("is_deposit", "boolean"),
    ("is_default_deposit", "boolean"),
    ("hidden_in_dinero", "boolean"),
    ("bank_registration_number", "text"),
    ("bank_account_number", "text"),
    ("bank_iban_number", "text"),
)
_ACCOUNT_NAMES = ", ".join(name for name, _ in _ACCOUNT_COLUMNS)
ACCOUNT_FIELDS = [name for name, _ in _ACCOUNT_COLUMNS[1:]]
"""An account's columns as Dinero sends them (after its number), the keys of `Chart.accounts`'
rows."""
_CATEGORY_FIELDS = ["id", *history.CATEGORY_FIELDS]
_UPSERT_ACCOUNTS = text(
    f"""
    INSERT INTO dinero_accounts (company_id, {_ACCOUNT_NAMES}, present)
    SELECT :company_id, {", ".join(f"r.{name}" for name, _ in _ACCOUNT_COLUMNS)}, true
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r({", ".join(f"{name} {kind}" for name, kind in _ACCOUNT_COLUMNS)})
    ON CONFLICT (company_id, account_number) DO UPDATE
    SET {", ".join(f"{name} = excluded.{name}" for name, _ in _ACCOUNT_COLUMNS[1:])},
        present = true, updated_at = now()
    """  # noqa: S608 - the column names are this module's constants
)
"""New and changed accounts, all their columns as Dinero sent them."""

_CATEGORIES = text(
    f"""
    WITH incoming AS (
        SELECT * FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS (
            id uuid, account_number integer, account_name text, tax_code text, active boolean,
            inactive_reason text)) WITH ORDINALITY AS r
    ), old AS (
        SELECT c.* FROM categories AS c JOIN incoming AS i ON i.account_number = c.account_number
        WHERE c.company_id = :company_id
    ), written AS (
        INSERT INTO categories
            (id, company_id, account_number, account_name, name, tax_code, hidden, active,
             inactive_reason)
        SELECT i.id, :company_id, i.account_number, i.account_name, NULL, i.tax_code, false,
            i.active, i.inactive_reason
        FROM incoming AS i
        ON CONFLICT (company_id, account_number) DO UPDATE
        SET account_name = excluded.account_name, active = excluded.active,
            inactive_reason = excluded.inactive_reason, updated_at = now()
        RETURNING categories.*
    ), changed AS (
        SELECT w.*, i.ordinality AS n,
            {", ".join(f"o.{name} AS was_{name}" for name in history.CATEGORY_FIELDS)}
        FROM written AS w JOIN incoming AS i ON i.account_number = w.account_number
            LEFT JOIN old AS o ON o.id = w.id
    )
    {history.synced_category_history("changed")}
    """  # noqa: S608 - the history's part is that module's constants
)
"""New categories, and the Dinero-owned columns of changed ones (the admin's name, tax code and
hiding are never touched by a sync), with their history rows: one statement."""


async def _mark_gone(
    session: AsyncSession,
    model: type[TaxCode] | type[DineroAccount],
    key: str,
    company_id: str,
    gone: Collection[Any],
) -> None:
    """One UPDATE for the rows no longer in Dinero's lists (kept, present = false)."""
    if gone:
        await session.execute(
            update(model)
            .where(model.company_id == company_id, getattr(model, key).in_(gone))
            .values(present=False)
        )


@dataclass(frozen=True)
class StoredChart:
    """The company's chart as stored, as plain values by key (what a sync compares)."""

    tax_codes: dict[Any, tuple[Any, ...]]
    """code: (name, rate, present)"""
    accounts: dict[Any, tuple[Any, ...]]
    """account number: (the `_ACCOUNT_COLUMNS` after the number, present)"""
    categories: dict[Any, dict[str, Any]]
    """account number: the category's id and `history.CATEGORY_FIELDS`"""


async def read_stored_chart(session: AsyncSession, company_id: str) -> StoredChart:
    async def values(model: type[Any], key: str, fields: Sequence[str]) -> dict[Any, Any]:
        columns = [getattr(model, name) for name in (key, *fields)]
        rows = await session.execute(select(*columns).where(model.company_id == company_id))
        return {row[0]: tuple(row[1:]) for row in rows}

    categories = await values(Category, "account_number", _CATEGORY_FIELDS)
    return StoredChart(
        tax_codes=await values(TaxCode, "code", ["name", "rate", "present"]),
        accounts=await values(DineroAccount, "account_number", [*ACCOUNT_FIELDS, "present"]),
        categories={
            number: dict(zip(_CATEGORY_FIELDS, row, strict=True))
            for number, row in categories.items()
        },
    )


async def apply_chart(
    session: AsyncSession, company_id: str, chart: Chart, stored: StoredChart | None = None
) -> dict[str, int]:
    """Bring the stored chart in line with Dinero's; returns how many rows of each kind changed.

    The stored rows (`stored`, read now when not given) are compared here as plain values; what
    differs is written in a few set-based statements (each list one JSON parameter), no row
    loaded as an object.
    """
    if stored is None:
        stored = await read_stored_chart(session, company_id)
    summary = empty_summary()
    known_codes = await _apply_tax_codes(
        session, company_id, chart.vat_types, stored.tax_codes, summary
    )
    incoming = chart.accounts
    await _apply_accounts(session, company_id, incoming, stored.accounts, summary)
    await _apply_categories(session, company_id, incoming, known_codes, stored.categories, summary)
    return summary


async def _apply_tax_codes(
    session: AsyncSession,
    company_id: str,
    vat_types: Sequence[VatType],
    stored: dict[Any, tuple[Any, ...]],
    summary: dict[str, int],
) -> set[str]:
    """Returns the codes present after the sync (every code Dinero sent, and `none`)."""
    incoming: dict[str, tuple[str, Decimal]] = {NO_VAT: (NO_VAT_NAME, Decimal("0.0000"))}
    for vat in vat_types:
        if vat.vat_code:
            incoming[vat.vat_code] = (vat.name or vat.vat_code, vat.vat_rate.quantize(RATE_PLACES))
    await _write_changed(
        session,
        company_id,
        kind="tax_codes",
        upsert=_UPSERT_TAX_CODES,
        model=TaxCode,
        key="code",
        incoming=incoming,
        stored=stored,
        summary=summary,
        row=lambda code, values: {"code": code, "name": values[0], "rate": values[1]},
    )
    return set(incoming)


async def _apply_accounts(
    session: AsyncSession,
    company_id: str,
    incoming: dict[int, dict[str, Any]],
    stored: dict[Any, tuple[Any, ...]],
    summary: dict[str, int],
) -> None:
    await _write_changed(
        session,
        company_id,
        kind="accounts",
        upsert=_UPSERT_ACCOUNTS,
        model=DineroAccount,
        key="account_number",
        incoming={
            number: tuple(values[name] for name in ACCOUNT_FIELDS)
            for number, values in incoming.items()
        },
        stored=stored,
        summary=summary,
        row=lambda number, values: {
            "account_number": number,
            **dict(zip(ACCOUNT_FIELDS, values, strict=True)),
        },
    )


async def _write_changed(
    session: AsyncSession,
    company_id: str,
    *,
    kind: str,
    upsert: TextClause,
    model: type[TaxCode] | type[DineroAccount],
    key: str,
    incoming: Mapping[Any, tuple[Any, ...]],
    stored: dict[Any, tuple[Any, ...]],
    summary: dict[str, int],
    row: Callable[[Any, tuple[Any, ...]], dict[str, Any]],
) -> None:
    """Tax codes or accounts: the new and changed ones (`incoming`: key -> the stored columns
    but `present`) upserted in one statement, those gone from Dinero marked in one UPDATE, each
    counted in `summary` as `{kind}_added`, `_updated` or `_removed`."""
    write: list[dict[str, Any]] = []
    for name, values in incoming.items():
        was = stored.get(name)
        if was is None:
            summary[f"{kind}_added"] += 1
        elif was != (*values, True):
            summary[f"{kind}_updated"] += 1
        else:
            continue
        write.append(row(name, values))
    if write:
        await session.execute(upsert, {"company_id": company_id, "rows": _rows_json(write)})
    gone = [name for name, was in stored.items() if name not in incoming and was[-1]]
    await _mark_gone(session, model, key, company_id, gone)
    summary[f"{kind}_removed"] += len(gone)


DEACTIVATED, UPDATED = "categories_deactivated", "categories_updated"


async def _apply_categories(
    session: AsyncSession,
    company_id: str,
    incoming: dict[int, dict[str, Any]],
    known_codes: Collection[str],
    stored: dict[Any, dict[str, Any]],
    summary: dict[str, int],
) -> None:
    """Categories for the purchase accounts, and a history row for each one written."""
    purchase = {number: values for number, values in incoming.items() if values["is_purchase"]}
    write: list[dict[str, Any]] = []
    removed = {"active": False, "inactive_reason": "removed_from_dinero"}

    def changed(was: dict[str, Any], state: dict[str, Any]) -> None:
        write.append({**was, **state, "id": str(was["id"])})
        summary[DEACTIVATED if was["active"] and not state["active"] else UPDATED] += 1

    for number, values in purchase.items():
        hidden = bool(values["hidden_in_dinero"])
        state = {
            "account_name": values["name"],
            "active": not hidden,
            "inactive_reason": "hidden_in_dinero" if hidden else None,
        }
        was = stored.get(number)
        if was is not None:
            if _differs(was, state):
                changed(was, state)
            continue
        vat_code = values["vat_code"]
        write.append(
            {
                "id": str(uuid.uuid4()),
                "account_number": number,
                "tax_code": vat_code if vat_code in known_codes else None,
                **state,
            }
        )
        summary["categories_added"] += 1
    for number, was in stored.items():
        if number not in purchase and _differs(was, removed):
            changed(was, removed)
    if write:
        await session.execute(_CATEGORIES, {"company_id": company_id, "rows": _rows_json(write)})

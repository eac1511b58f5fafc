"""Importing and refreshing one data source: page by page, resumable, incremental.

One run per data source at a time (a session-level advisory lock on a connection of its own, so
a killed worker releases it). No transaction is open while Dinero answers: each page (or entries
window) is written in its own short transaction together with its checkpoint, so a run that
stops anywhere resumes at the next page, and nothing is held in memory beyond one page.

Per type:
- paged collections: a first (or full) read pages through everything; later refreshes read
  the changes since the watermark, then the deleted ones only, and mark deleted records.
- accounts (unpaged lists): every run reads the list and marks what Dinero no longer has deleted.
- entries: the accounting year, in date windows sized to keep each answer bounded; later
  refreshes read the changes in windows of at most 31 days, keeping the year's entries.
Watermarks are taken from the database clock before a read starts and applied with an overlap,
so a change made while a read was running, or seen late by Dinero, is read again, never missed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.backoff import DATA_SOURCE_RUN, Backoff
from app.connection.gateway import DineroGateway
from app.connection.models import ConnectionStatus, DineroConnection, get_connection
from app.datasources.models import (
    DataSource,
    DataSourceType,
    Phase,
    SourceStatus,
)
from app.datasources.records import Row, batch_json, to_rows
from app.datasources.types import IMPORT_ORDER, SPECS, Kind, TypeSpec
from app.db import try_advisory_lock
from app.dinero.client import DineroClient
from app.dinero.errors import (
    DineroError,
    DineroForbidden,
    DineroNotPro,
    DineroRateLimited,
    DineroUnauthorized,
)
from app.dinero.pacing import Lane, PacerBusy
from app.dinero.paging import change_windows
from app.errors import AppError

log = structlog.get_logger(__name__)

LOCK_NAMESPACE = 0x44535243  # "DSRC": advisory-lock namespace of data-source runs
RECOVERY_MINUTES = 60
"""A run not heard of for this long (on-demand data sources) is started again by the schedule."""


@dataclass(frozen=True)
class ImportSettings:
    """Tunables of a run (tests and the benchmark pass their own)."""

    page_size: int = 1000
    """Records per page of a paged collection (Dinero's maximum)."""
    entries_per_request: int = 10_000
    """Aim for at most this many entries per `entries` answer (windows adapt to the density)."""
    first_entries_window_days: int = 31
    overlap: timedelta = timedelta(minutes=5)
    """Changes are read from the watermark less this (clock skew, late visibility)."""
    max_wait_seconds: float = 30.0
    """A request that cannot get a slot of the shared budget within this gives the run back."""
    max_attempts: int = 6
    """Consecutive runs meeting a temporary Dinero failure before the data source fails."""
    busy_retry_seconds: tuple[float, float] = (5.0, 300.0)
    failure_backoff: Backoff = DATA_SOURCE_RUN
    """How long a run Dinero failed for waits before the next attempt."""


DEFAULTS = ImportSettings()


@dataclass(frozen=True)
class RunOutcome:
    result: Literal["done", "failed", "retry", "skipped", "gone", "running_elsewhere"]
    retry_in: float | None = None
    """Seconds after which the job should run again (retry, or a run requested meanwhile)."""


class SourceGone(Exception):
    """The data source was deleted while its run was going on."""


class TypeGone(Exception):
    """The data type was removed from the data source while it was being imported."""


class RunFailed(Exception):
    """A failure the run cannot get past by waiting; recorded on the data source."""

    def __init__(self, code: str, message: str, dinero_message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.dinero_message = dinero_message


def source_lock(engine: AsyncEngine, data_source_id: UUID) -> AbstractAsyncContextManager[bool]:
    """Take the data source's run lock if free; yields whether it was taken."""
    return try_advisory_lock(engine, LOCK_NAMESPACE, str(data_source_id))


_UPSERT = text(
    """
    INSERT INTO data_source_records AS r (
        data_source_id, data_type, key, doc, record_date, payment_date,
        dinero_created_at, dinero_updated_at, deleted, deleted_at, seen_at, changed_at)
    SELECT :ds, :data_type, e->>'k', e->'d', CAST(e->>'rd' AS date), CAST(e->>'pd' AS date),
           CAST(e->>'ca' AS timestamptz), CAST(e->>'ua' AS timestamptz),
           CAST(e->>'x' AS boolean),
           CASE WHEN CAST(e->>'x' AS boolean)
                THEN coalesce(CAST(e->>'da' AS timestamptz), now()) END,
           now(), now()
    FROM jsonb_array_elements(CAST(:batch AS jsonb)) AS e
    ON CONFLICT (data_source_id, data_type, key) DO UPDATE SET
        doc = excluded.doc,
        record_date = excluded.record_date,
        payment_date = excluded.payment_date,
        dinero_created_at = excluded.dinero_created_at,
        dinero_updated_at = excluded.dinero_updated_at,
        deleted = excluded.deleted,
        deleted_at = CASE WHEN excluded.deleted
            THEN coalesce(r.deleted_at, excluded.deleted_at) END,
        seen_at = excluded.seen_at,
        seq = CASE
            WHEN r.doc IS DISTINCT FROM excluded.doc OR r.deleted IS DISTINCT FROM excluded.deleted
            THEN nextval('data_source_records_seq') ELSE r.seq END,
        changed_at = CASE
            WHEN r.doc IS DISTINCT FROM excluded.doc OR r.deleted IS DISTINCT FROM excluded.deleted
            THEN excluded.changed_at ELSE r.changed_at END
    """
)

_MARK_UNSEEN_DELETED = text(
    """
    UPDATE data_source_records
    SET deleted = true, deleted_at = now(), changed_at = now(),
        seq = nextval('data_source_records_seq')
    WHERE data_source_id = :ds AND data_type = :data_type AND NOT deleted
      AND seen_at < :pass_started
    """
)

_RECOUNT = text(
    """
    UPDATE data_source_types AS t
    SET records = c.live, deleted_records = c.gone
    FROM (
        SELECT count(*) FILTER (WHERE NOT deleted) AS live,
               count(*) FILTER (WHERE deleted) AS gone
        FROM data_source_records WHERE data_source_id = :ds AND data_type = :data_type
    ) AS c
    WHERE t.data_source_id = :ds AND t.data_type = :data_type
    """
)


_PUSH_SCHEDULE = text(
    """
    UPDATE data_sources
    SET next_refresh_at = now() + coalesce(refresh_minutes, 60) * interval '1 minute'
    WHERE id = :id AND next_refresh_at <= now()
    """
)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def failure_of(exc: DineroError | AppError) -> RunFailed:
    """The code and sentence a finance admin sees for a failure no waiting can fix."""
    if isinstance(exc, AppError):
        return RunFailed(exc.code, exc.detail)
    message = exc.dinero_message
    if isinstance(exc, DineroUnauthorized):
        return RunFailed(
            "reauth_required", "Dinero no longer accepts the connection; reconnect Dinero.", message
        )
    if isinstance(exc, DineroNotPro):
        return RunFailed(
            "organization_not_pro",
            "The Dinero organization has no active Pro subscription, which the API requires.",
            message,
        )
    if isinstance(exc, DineroForbidden):
        return RunFailed(
            "dinero_forbidden", "Dinero refused access to the organization's data.", message
        )
    if exc.transient:
        return RunFailed(
            "dinero_unavailable",
            "Dinero did not answer properly for a long time; the import stopped.",
            message,
        )
    return RunFailed("dinero_refused", f"Dinero refused to hand over the data: {exc}", message)


class Importer:
    """One run for one data source (use `run_data_source`, which takes the lock)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: DineroGateway,
        data_source_id: UUID,
        settings: ImportSettings = DEFAULTS,
    ) -> None:
        self._sessions = sessionmaker
        self._gateway = gateway
        self._id = data_source_id
        self._settings = settings
        self.requests = 0
        """Dinero requests this run made (pages, lists, windows)."""

    # --- the run ---------------------------------------------------------------------------

    async def run(self, *, scheduled: bool) -> RunOutcome:
        try:
            started = await self._start(scheduled=scheduled)
            if started is None:
                return RunOutcome("skipped")
            source, connection = started
            client = self._gateway.client_for(
                connection, Lane.DATA_SOURCE, max_wait=self._settings.max_wait_seconds
            )
            for data_type in IMPORT_ORDER:
                if data_type.value not in source.data_types:
                    continue
                try:
                    await self._import_type(client, source, SPECS[data_type])
                except TypeGone:
                    log.info("data_source_type_removed", data_type=data_type.value)
            await self._finish()
            return RunOutcome("done")
        except SourceGone:
            log.info("data_source_gone", data_source_id=str(self._id))
            return RunOutcome("gone")
        except PacerBusy as exc:
            delay = _clamp(exc.retry_after, self._settings.busy_retry_seconds)
            await self._wait(delay, code=None, message=None, dinero_message=None, count=False)
            return RunOutcome("retry", retry_in=delay)
        except RunFailed as exc:
            await self._fail(exc)
            return RunOutcome("failed")
        except (DineroError, AppError) as exc:
            if isinstance(exc, DineroError) and exc.transient:
                return await self._transient(exc)
            await self._fail(failure_of(exc))
            return RunOutcome("failed")
        except Exception as exc:
            await self._fail(
                RunFailed("internal_error", "The import failed on our side; it has been logged.")
            )
            log.exception("data_source_run_crashed", data_source_id=str(self._id), error=repr(exc))
            raise

    async def _start(self, *, scheduled: bool) -> tuple[DataSource, DineroConnection] | None:
        async with self._sessions() as session, session.begin():
            source = (
                await session.execute(
                    select(DataSource)
                    .where(DataSource.id == self._id)
                    .options(selectinload(DataSource.types))
                    .with_for_update(of=DataSource)
                )
            ).scalar_one_or_none()
            if source is None:
                raise SourceGone
            now = await _db_now(session)
            requested = source.refresh_requested_at is not None and (
                source.started_at is None or source.refresh_requested_at > source.started_at
            )
            due = source.next_refresh_at is not None and source.next_refresh_at <= now
            if scheduled and not due and not requested:
                return None  # refreshed meanwhile (e.g. on demand), or no longer scheduled
            if source.full_refresh_requested_at is not None:
                for state in source.types:
                    if state.phase == Phase.INCREMENTAL:
                        state.phase = Phase.FULL
                        state.next_page = None
                        state.through_date = None
                        state.pass_started_at = None
                source.full_refresh_requested_at = None
            first = any(state.phase == Phase.INITIAL for state in source.types)
            source.status = SourceStatus.IMPORTING if first else SourceStatus.REFRESHING
            source.started_at = now
            source.retry_at = None
            # If this run is lost (a killed worker), the schedule starts another one then.
            source.next_refresh_at = now + timedelta(
                minutes=source.refresh_minutes or RECOVERY_MINUTES
            )
            connection = await get_connection(session=session, company_id=source.company_id)
        if connection is None or connection.status == ConnectionStatus.NOT_CONNECTED:
            raise RunFailed("not_connected", "Dinero is not connected; connect it again.")
        if connection.organization_id not in (None, source.organization_id):
            raise RunFailed(
                "organization_changed",
                f"The company is now connected to Dinero organization "
                f"{connection.organization_id}, but this data source imports organization "
                f"{source.organization_id}; create a new data source for the new organization.",
            )
        log.info(
            "data_source_run_started",
            data_source_id=str(self._id),
            status=source.status,
            scheduled=scheduled,
        )
        return source, connection

    async def _finish(self) -> None:
        async with self._sessions() as session, session.begin():
            source = await self._locked_source(session)
            now = await _db_now(session)
            source.status = SourceStatus.READY
            source.finished_at = now
            source.last_refreshed_at = now
            source.next_refresh_at = (
                now + timedelta(minutes=source.refresh_minutes) if source.refresh_minutes else None
            )
            source.retry_at = None
            source.attempts = 0
            source.error_code = source.error_message = source.error_dinero_message = None
        log.info("data_source_run_finished", data_source_id=str(self._id), requests=self.requests)

    async def _fail(self, failure: RunFailed) -> None:
        with contextlib.suppress(SourceGone):
            async with self._sessions() as session, session.begin():
                source = await self._locked_source(session)
                now = await _db_now(session)
                source.status = SourceStatus.FAILED
                source.finished_at = now
                source.retry_at = None
                source.attempts = 0
                source.error_code = failure.code
                source.error_message = failure.message
                source.error_dinero_message = failure.dinero_message
                source.next_refresh_at = (
                    now + timedelta(minutes=source.refresh_minutes)
                    if source.refresh_minutes
                    else None
                )
        log.warning(
            "data_source_run_failed",
            data_source_id=str(self._id),
            code=failure.code,
            reason=failure.message,
        )

    async def _transient(self, exc: DineroError) -> RunOutcome:
        async with self._sessions() as session:
            attempts = (
                await session.execute(select(DataSource.attempts).where(DataSource.id == self._id))
            ).scalar_one_or_none()
        attempts = (attempts or 0) + 1
        if attempts >= self._settings.max_attempts:
            await self._fail(failure_of(exc))
            return RunOutcome("failed")
        delay = self._settings.failure_backoff.seconds(attempts)
        if isinstance(exc, DineroRateLimited):
            delay = max(delay, exc.retry_after_seconds)
        code = "dinero_rate_limited" if isinstance(exc, DineroRateLimited) else "dinero_unavailable"
        await self._wait(
            delay,
            code=code,
            message=f"Dinero is not answering properly ({exc.summary}); trying again shortly.",
            dinero_message=exc.dinero_message,
            count=True,
        )
        return RunOutcome("retry", retry_in=delay)

    async def _wait(
        self,
        delay: float,
        *,
        code: str | None,
        message: str | None,
        dinero_message: str | None,
        count: bool,
    ) -> None:
        """Record that the run gives way and when it goes on; what it imported is kept."""
        with contextlib.suppress(SourceGone):
            async with self._sessions() as session, session.begin():
                source = await self._locked_source(session)
                now = await _db_now(session)
                source.retry_at = now + timedelta(seconds=delay)
                if count:
                    source.attempts += 1
                    source.error_code = code
                    source.error_message = message
                    source.error_dinero_message = dinero_message
        log.info(
            "data_source_run_paused",
            data_source_id=str(self._id),
            retry_in_seconds=round(delay, 1),
            reason=code or "budget_busy",
        )

    async def _locked_source(self, session: AsyncSession) -> DataSource:
        source = (
            await session.execute(
                select(DataSource).where(DataSource.id == self._id).with_for_update()
            )
        ).scalar_one_or_none()
        if source is None:
            raise SourceGone
        return source

    # --- per type ---------------------------------------------------------------------------

    async def _import_type(self, client: DineroClient, source: DataSource, spec: TypeSpec) -> None:
        state = await self._state(spec)
        full = state.phase != Phase.INCREMENTAL or state.watermark is None
        if spec.kind is Kind.FULL_LIST:
            await self._full_list(client, spec)
        elif spec.kind is Kind.PAGED:
            if full:
                await self._paged_full(client, spec, state)
            else:
                assert state.watermark is not None
                await self._paged_changes(client, spec, state.watermark)
        else:
            start, end = source.accounting_year_start, source.accounting_year_end
            if start is None or end is None:
                raise RunFailed(
                    "accounting_year_required", "Entries need an accounting year; none is set."
                )
            if full:
                await self._entries_full(client, spec, state, start, end)
            else:
                assert state.watermark is not None
                await self._entries_changes(client, spec, state.watermark, start, end)

    async def _state(self, spec: TypeSpec) -> DataSourceType:
        async with self._sessions() as session:
            state = await session.get(DataSourceType, (self._id, spec.name.value))
            if state is None:
                raise TypeGone
            return state

    async def _begin_pass(self, spec: TypeSpec, state: DataSourceType) -> datetime:
        """The start of a full read: kept across interruptions, so a resumed read keeps it."""
        if state.pass_started_at is not None:
            return state.pass_started_at
        async with self._sessions() as session, session.begin():
            row = await self._lock_type(session, spec)
            row.pass_started_at = await _db_now(session)
            return row.pass_started_at

    async def _full_list(self, client: DineroClient, spec: TypeSpec) -> None:
        async with self._sessions() as session:
            pass_started = await _db_now(session)
        records = await client.account_records(spec.collection)
        self.requests += 1
        rows = to_rows(spec, records)
        await self._write(spec, rows)
        await self._complete_full(spec, pass_started)

    async def _paged_full(
        self, client: DineroClient, spec: TypeSpec, state: DataSourceType
    ) -> None:
        pass_started = await self._begin_pass(spec, state)
        size = self._settings.page_size
        number = state.next_page or 0
        while True:
            page = await client.record_page(spec.collection, page=number, page_size=size)
            self.requests += 1
            await self._write(spec, to_rows(spec, page.records), next_page=number + 1)
            if page.last:
                break
            number += 1
        await self._complete_full(spec, pass_started)

    async def _paged_changes(
        self, client: DineroClient, spec: TypeSpec, watermark: datetime
    ) -> None:
        async with self._sessions() as session:
            run_started = await _db_now(session)
        since = watermark - self._settings.overlap
        size = self._settings.page_size
        # The changes cover created, updated and deleted records; the deleted-only pass
        # makes sure deletions are seen however Dinero's v1 lists treat deleted records.
        for deleted_only in (False, True):
            number = 0
            while True:
                page = await client.record_page(
                    spec.collection,
                    page=number,
                    page_size=size,
                    changes_since=since,
                    deleted_only=deleted_only,
                )
                self.requests += 1
                rows = to_rows(spec, page.records, force_deleted=deleted_only)
                await self._write(spec, rows)
                if page.last:
                    break
                number += 1
        await self._complete_changes(spec, run_started)

    async def _entries_full(
        self, client: DineroClient, spec: TypeSpec, state: DataSourceType, first: date, last: date
    ) -> None:
        pass_started = await self._begin_pass(spec, state)
        start = first if state.through_date is None else state.through_date + timedelta(days=1)
        days = self._settings.first_entries_window_days
        while start <= last:
            end = min(start + timedelta(days=days - 1), last)
            entries = await client.entry_records(start, end)
            self.requests += 1
            count = len(entries)
            rows = to_rows(spec, entries)
            del entries
            await self._write(spec, rows, through_date=end)
            del rows
            days = self._next_window(count, (end - start).days + 1, days)
            start = end + timedelta(days=1)
        await self._complete_full(spec, pass_started)

    def _next_window(self, count: int, span_days: int, days: int) -> int:
        """Days for the next `entries` call: as many as keep the answer near the target."""
        if count == 0:
            return min(days * 4, 366)
        per_day = count / span_days
        return max(1, min(366, math.floor(self._settings.entries_per_request / per_day)))

    async def _entries_changes(
        self,
        client: DineroClient,
        spec: TypeSpec,
        watermark: datetime,
        first: date,
        last: date,
    ) -> None:
        async with self._sessions() as session:
            # Dinero's times are whole seconds: ask (and remember) exactly what is covered.
            now = (await _db_now(session)).replace(microsecond=0)
        since = watermark - self._settings.overlap
        if since < now:
            for window_start, window_end in change_windows(since, now):
                entries = await client.entry_change_records(window_start, window_end)
                self.requests += 1
                # The changes cover every year; this data source keeps its own year's.
                mine = [e for e in entries if e.date is not None and first <= e.date <= last]
                del entries
                await self._write(spec, to_rows(spec, mine), watermark=window_end)
        await self._complete_changes(spec, now)

    # --- writing ---------------------------------------------------------------------------

    async def _lock_type(self, session: AsyncSession, spec: TypeSpec) -> DataSourceType:
        # The data source first (key share: only DELETE and PATCH, which take it FOR UPDATE
        # before the type rows, wait on it), then the type: one lock order, no deadlock.
        alive = (
            await session.execute(
                select(DataSource.id)
                .where(DataSource.id == self._id)
                .with_for_update(read=True, key_share=True)
            )
        ).scalar_one_or_none()
        if alive is None:
            raise SourceGone
        state = (
            await session.execute(
                select(DataSourceType)
                .where(
                    DataSourceType.data_source_id == self._id,
                    DataSourceType.data_type == spec.name.value,
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if state is None:
            raise TypeGone  # removed from the data source
        return state

    async def _write(self, spec: TypeSpec, rows: Sequence[Row], **checkpoint: Any) -> None:
        """Upsert one page and move the checkpoint, in one transaction."""
        async with self._sessions() as session, session.begin():
            state = await self._lock_type(session, spec)
            if rows:
                await session.execute(_UPSERT, _params(self._id, spec, rows))
            await self._recount(session, spec)
            for name, value in checkpoint.items():
                setattr(state, name, value)

    async def _recount(self, session: AsyncSession, spec: TypeSpec) -> None:
        await session.execute(_RECOUNT, {"ds": self._id, "data_type": spec.name.value})
        await session.flush()

    async def _complete_full(self, spec: TypeSpec, pass_started: datetime) -> None:
        """A full read is done: what it did not see is gone from Dinero."""
        async with self._sessions() as session, session.begin():
            state = await self._lock_type(session, spec)
            await session.execute(
                _MARK_UNSEEN_DELETED,
                {"ds": self._id, "data_type": spec.name.value, "pass_started": pass_started},
            )
            await self._recount(session, spec)
            state.phase = Phase.INCREMENTAL
            state.watermark = pass_started
            state.next_page = None
            state.through_date = None
            state.pass_started_at = None
            state.refreshed_at = await _db_now(session)

    async def _complete_changes(self, spec: TypeSpec, run_started: datetime) -> None:
        async with self._sessions() as session, session.begin():
            state = await self._lock_type(session, spec)
            state.watermark = run_started
            state.refreshed_at = await _db_now(session)


def _params(data_source_id: UUID, spec: TypeSpec, rows: Sequence[Row]) -> Mapping[str, Any]:
    return {"ds": data_source_id, "data_type": spec.name.value, "batch": batch_json(rows)}


async def _db_now(session: AsyncSession) -> datetime:
    """The database's clock: every stored time and watermark comes from one clock."""
    moment: datetime = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
    return moment


async def run_data_source(
    *,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: DineroGateway,
    data_source_id: UUID,
    scheduled: bool = False,
    settings: ImportSettings = DEFAULTS,
) -> RunOutcome:
    """Run the data source's import or refresh now, unless another run holds it."""
    async with source_lock(engine, data_source_id) as got:
        if got:
            importer = Importer(
                sessionmaker=sessionmaker,
                gateway=gateway,
                data_source_id=data_source_id,
                settings=settings,
            )
            return await importer.run(scheduled=scheduled)
    # Another run is going on. If a refresh was asked for after it started, it may not
    # include what the admin expects: come back once it is likely done. A scheduled refresh
    # is covered by the running one: the schedule moves on.
    async with sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                select(DataSource.refresh_requested_at, DataSource.started_at).where(
                    DataSource.id == data_source_id
                )
            )
        ).one_or_none()
        if row is None:
            return RunOutcome("gone")
        if scheduled:
            await session.execute(_PUSH_SCHEDULE, {"id": data_source_id})
    requested, started = row
    if requested is not None and (started is None or requested > started):
        return RunOutcome("running_elsewhere", retry_in=60.0)
    return RunOutcome("running_elsewhere")


__all__ = [
    "DEFAULTS",
    "ImportSettings",
    "Importer",
    "RunFailed",
    "RunOutcome",
    "failure_of",
    "run_data_source",
    "source_lock",
]

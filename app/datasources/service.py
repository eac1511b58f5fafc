"""Data sources: create (checking the accounting year with Dinero), read, change, delete,
refresh on demand, and read their records with cursors and filters.

Services flush, never commit; the request's session commits. The only Dinero call made during a
request is the accounting-years read that decides whether an entries data source is accepted.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import ColumnElement, Text, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.connection.gateway import DineroGateway, ReauthRequired, require_connected
from app.connection.models import DineroConnection, get_connection
from app.datasources import tasks
from app.datasources.models import (
    DataSource,
    DataSourceRecord,
    DataSourceType,
    Phase,
    SourceStatus,
)
from app.datasources.records import StoredRecord
from app.datasources.schemas import AccountingYearIn, DataSourceCreate, DataSourcePatch
from app.datasources.types import PUBLIC_ORDER, SPECS, DataType, DateField, date_fields_of
from app.db import release_transaction
from app.dinero.errors import DineroError, DineroUnauthorized
from app.dinero.models import AccountingYear
from app.dinero.pacing import INTERACTIVE_MAX_WAIT_SECONDS, Lane
from app.errors import AppError, DineroRefused, DineroUnavailable, NotFound, ValidationFailed
from app.inputs import InvalidCursor

log = structlog.get_logger(__name__)


class NotAcceptable(AppError):
    status = 406
    code = "not_acceptable"
    title = "Not acceptable"


def invalid(code: str, field: str, message: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, errors={field: message}, extra=extra or None)


# --- rules ------------------------------------------------------------------------------------


def check_rules(
    types: Sequence[DataType], *, has_year: bool, default_date_field: DateField | None
) -> None:
    """Entries need an accounting year and nothing else takes one; the default date field must
    be one at least one of the types has."""
    if DataType.ENTRIES in types and not has_year:
        raise invalid(
            "accounting_year_required",
            "accounting_year",
            "Entries are imported per accounting year: give accounting_year with start and end "
            "(YYYY-MM-DD) of one of the organization's accounting years.",
        )
    if DataType.ENTRIES not in types and has_year:
        raise invalid(
            "accounting_year_not_applicable",
            "accounting_year",
            "accounting_year applies to entries only; add entries to data_types or leave it out.",
        )
    if default_date_field is not None:
        available = date_fields_of(list(types))
        if default_date_field not in available:
            names = ", ".join(sorted(f.value for f in available)) or "none"
            raise invalid(
                "date_field_not_available",
                "default_date_field",
                f"None of the chosen data types has the date {default_date_field.value!r}; "
                f"they have: {names}.",
            )


def default_title(types: Sequence[DataType], year_name: str | None) -> str:
    ordered = [t for t in PUBLIC_ORDER if t in types]
    labels = [SPECS[t].label for t in ordered]
    text_ = labels[0] + "".join(", " + label.lower() for label in labels[1:])
    if year_name:
        text_ += f" - accounting year {year_name}"
    return text_[:200]


def _year_label(year: AccountingYear) -> str:
    name = year.name or ""
    span = f"{year.from_date} to {year.to_date}"
    return f"{name} ({span})" if name else span


# --- Dinero -----------------------------------------------------------------------------------


async def _connection(session: AsyncSession, company_id: str) -> DineroConnection:
    connection = await get_connection(session=session, company_id=company_id)
    return require_connected(connection, before="creating a data source")


async def _accounting_years(
    gateway: DineroGateway, connection: DineroConnection
) -> list[AccountingYear]:
    client = gateway.client_for(connection, Lane.INTERACTIVE, max_wait=INTERACTIVE_MAX_WAIT_SECONDS)
    try:
        return await client.accounting_years()
    except DineroUnauthorized as exc:
        raise ReauthRequired(
            "Dinero no longer accepts the connection; reconnect Dinero.",
            extra={"dinero_message": exc.dinero_message},
        ) from exc
    except DineroError as exc:
        if exc.transient:
            raise DineroUnavailable(
                "Dinero could not be asked for the accounting years; try again shortly.",
                extra={"dinero_message": exc.dinero_message},
            ) from exc
        raise DineroRefused(
            f"Dinero refused to list the accounting years: {exc}",
            extra={"dinero_message": exc.dinero_message},
        ) from exc


def match_year(years: Sequence[AccountingYear], wanted: AccountingYearIn) -> AccountingYear:
    """The organization's year with exactly this start and end, or a 422 listing them all."""
    for year in years:
        if year.from_date == wanted.start_date and year.to_date == wanted.end_date:
            return year
    valid = [
        {"name": y.name, "start": y.from_date.isoformat(), "end": y.to_date.isoformat()}
        for y in sorted(years, key=lambda y: y.from_date or date.min)
        if y.from_date is not None and y.to_date is not None
    ]
    listed = "; ".join(_year_label(y) for y in years if y.from_date and y.to_date) or "none"
    message = (
        f"{wanted.start} to {wanted.end} is not one of the organization's accounting years in "
        f"Dinero. Valid years: {listed}."
    )
    raise invalid("accounting_year_unknown", "accounting_year", message, valid_years=valid)


# --- data sources -----------------------------------------------------------------------------


async def create_data_source(
    *, session: AsyncSession, gateway: DineroGateway, company_id: str, body: DataSourceCreate
) -> DataSource:
    """Create it and enqueue its first import (refused before anything is stored)."""
    check_rules(
        body.data_types,
        has_year=body.accounting_year is not None,
        default_date_field=body.default_date_field,
    )
    connection = await _connection(session, company_id)
    assert connection.organization_id is not None
    year: AccountingYear | None = None
    if body.accounting_year is not None:
        await release_transaction(session)  # only read so far: none open while Dinero answers
        year = match_year(await _accounting_years(gateway, connection), body.accounting_year)
    year_name = None if year is None else (year.name or str(year.from_date))
    source = DataSource(
        company_id=company_id,
        organization_id=connection.organization_id,
        title=body.title or default_title(body.data_types, year_name),
        data_types=[t.value for t in body.data_types],
        accounting_year_start=None if year is None else year.from_date,
        accounting_year_end=None if year is None else year.to_date,
        accounting_year_name=year_name,
        default_date_field=body.default_date_field,
        refresh_minutes=body.refresh_minutes,
        status=SourceStatus.IMPORTING,
        attempts=0,
        types=[_new_type(t) for t in body.data_types],
    )
    session.add(source)
    await session.flush()
    await tasks.enqueue_refresh(session, source.id, reason="created")
    log.info(
        "data_source_created",
        data_source_id=str(source.id),
        company_id=company_id,
        data_types=source.data_types,
    )
    return source


def _new_type(data_type: DataType) -> DataSourceType:
    return DataSourceType(
        data_type=data_type.value, phase=Phase.INITIAL, records=0, deleted_records=0
    )


async def list_data_sources(*, session: AsyncSession, company_id: str) -> list[DataSource]:
    rows = await session.execute(
        select(DataSource)
        .where(DataSource.company_id == company_id)
        .options(selectinload(DataSource.types))
        .order_by(DataSource.created_at, DataSource.id)
    )
    return list(rows.scalars())


async def get_data_source(
    *, session: AsyncSession, company_id: str, data_source_id: UUID, for_update: bool = False
) -> DataSource:
    query = (
        select(DataSource)
        .where(DataSource.id == data_source_id, DataSource.company_id == company_id)
        .options(selectinload(DataSource.types))
    )
    if for_update:
        query = query.with_for_update(of=DataSource)
    source = (await session.execute(query)).scalar_one_or_none()
    if source is None:
        raise NotFound("No such data source.", code="data_source_not_found")
    return source


async def update_data_source(
    *, session: AsyncSession, company_id: str, data_source_id: UUID, body: DataSourcePatch
) -> DataSource:
    """Change title, types, default date field or refresh interval; types added are imported."""
    given = body.model_fields_set
    if "accounting_year" in given:
        raise invalid(
            "accounting_year_immutable",
            "accounting_year",
            "The accounting year of a data source cannot change: another year is another data "
            "source.",
        )
    source = await get_data_source(
        session=session, company_id=company_id, data_source_id=data_source_id, for_update=True
    )
    current = [DataType(t) for t in source.data_types]
    types = current if body.data_types is None else body.data_types
    date_field = (
        body.default_date_field
        if "default_date_field" in given
        else (DateField(source.default_date_field) if source.default_date_field else None)
    )
    check_rules(
        types, has_year=source.accounting_year_start is not None, default_date_field=date_field
    )
    if "title" in given:
        source.title = body.title or default_title(types, source.accounting_year_name)
    source.default_date_field = date_field
    if "refresh_minutes" in given:
        source.refresh_minutes = body.refresh_minutes
        if body.refresh_minutes is None:
            source.next_refresh_at = None
        else:
            base = source.last_refreshed_at or datetime.now(UTC)
            source.next_refresh_at = base + timedelta(minutes=body.refresh_minutes)
    added = [t for t in types if t not in current]
    removed = [t for t in current if t not in types]
    if removed:
        names = [t.value for t in removed]
        await session.execute(
            delete(DataSourceRecord).where(
                DataSourceRecord.data_source_id == source.id,
                DataSourceRecord.data_type.in_(names),
            )
        )
        source.types = [s for s in source.types if s.data_type not in names]
    if added:
        source.types = [*source.types, *(_new_type(t) for t in added)]
    source.data_types = [t.value for t in types]
    await session.flush()
    if added:
        await tasks.enqueue_refresh(session, source.id, reason="types_added")
    return source


async def delete_data_source(
    *, session: AsyncSession, company_id: str, data_source_id: UUID
) -> None:
    """Delete it with all its records; a run going on stops at its next page."""
    source = await get_data_source(
        session=session, company_id=company_id, data_source_id=data_source_id, for_update=True
    )
    await session.execute(delete(DataSource).where(DataSource.id == source.id))
    session.expunge(source)
    log.info("data_source_deleted", data_source_id=str(data_source_id), company_id=company_id)


async def request_refresh(
    *, session: AsyncSession, company_id: str, data_source_id: UUID, full: bool
) -> tuple[DataSource, bool]:
    """Ask for a run now; returns the data source and whether a new run was enqueued."""
    source = await get_data_source(
        session=session, company_id=company_id, data_source_id=data_source_id, for_update=True
    )
    now = (await session.execute(select(func.now()))).scalar_one()
    source.refresh_requested_at = now
    if full:
        source.full_refresh_requested_at = now
    if source.status in (SourceStatus.READY, SourceStatus.FAILED):
        source.status = SourceStatus.REFRESHING
    await session.flush()
    queued = await tasks.enqueue_refresh(session, source.id, reason="requested")
    return source, queued


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordFilter:
    """Which records a reader asked for (validated)."""

    data_types: tuple[DataType, ...]
    """Empty: all types of the data source."""
    include_deleted: bool
    date_field: DateField | None
    date_from: date | None
    date_to: date | None


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise invalid("validation_error", name, f"{value!r} is not a date (YYYY-MM-DD).") from exc


def record_filter(
    source: DataSource,
    *,
    data_types: Sequence[DataType],
    include_deleted: bool,
    date_field: DateField | None,
    date_from: str | None,
    date_to: str | None,
) -> RecordFilter:
    """Check a reader's filters against the data source."""
    own = [DataType(t) for t in source.data_types]
    foreign = [t.value for t in data_types if t not in own]
    if foreign:
        raise invalid(
            "data_type_not_in_source",
            "data_type",
            f"This data source does not import {', '.join(foreign)}; it imports "
            f"{', '.join(t.value for t in own)}.",
        )
    low = _parse_day(date_from, "date_from")
    high = _parse_day(date_to, "date_to")
    if low is not None and high is not None and high < low:
        raise invalid("validation_error", "date_to", "date_to is before date_from.")
    chosen = date_field
    if (low is not None or high is not None) and chosen is None:
        if source.default_date_field is None:
            raise invalid(
                "date_field_required",
                "date_field",
                "Name the date to filter on (date_field), or give the data source a default.",
            )
        chosen = DateField(source.default_date_field)
    if chosen is not None:
        scope = list(data_types) or own
        available = date_fields_of(scope)
        if chosen not in available:
            names = ", ".join(sorted(f.value for f in available)) or "none"
            raise invalid(
                "date_field_not_available",
                "date_field",
                f"The records asked for have no date {chosen.value!r}; they have: {names}.",
            )
    return RecordFilter(tuple(data_types), include_deleted, chosen, low, high)


def _date_condition(flt: RecordFilter) -> list[ColumnElement[bool]]:
    if flt.date_field is None or (flt.date_from is None and flt.date_to is None):
        return []
    r = DataSourceRecord
    conditions: list[ColumnElement[bool]] = []
    if flt.date_field in (DateField.DATE, DateField.PAYMENT_DATE):
        column = r.record_date if flt.date_field is DateField.DATE else r.payment_date
        conditions.append(column.is_not(None))
        if flt.date_from is not None:
            conditions.append(column >= flt.date_from)
        if flt.date_to is not None:
            conditions.append(column <= flt.date_to)
        return conditions
    moment = r.dinero_created_at if flt.date_field is DateField.CREATED_AT else r.dinero_updated_at
    conditions.append(moment.is_not(None))
    if flt.date_from is not None:
        conditions.append(moment >= datetime.combine(flt.date_from, time.min, UTC))
    if flt.date_to is not None:
        end = datetime.combine(flt.date_to + timedelta(days=1), time.min, UTC)
        conditions.append(moment < end)
    return conditions


def _conditions(
    data_source_id: UUID, flt: RecordFilter, *, after: int, upper: int | None
) -> list[ColumnElement[bool]]:
    r = DataSourceRecord
    conditions: list[ColumnElement[bool]] = [r.data_source_id == data_source_id, r.seq > after]
    if upper is not None:
        conditions.append(r.seq <= upper)
    if flt.data_types:
        conditions.append(r.data_type.in_([t.value for t in flt.data_types]))
    if not flt.include_deleted:
        conditions.append(r.deleted.is_(False))
    return conditions + _date_condition(flt)


async def fetch_records(
    session: AsyncSession,
    data_source_id: UUID,
    flt: RecordFilter,
    *,
    after: int,
    limit: int,
    upper: int | None = None,
) -> list[StoredRecord]:
    """Up to `limit` records after the position `after` (and up to `upper`), in seq order."""
    r = DataSourceRecord
    rows = await session.execute(
        select(r.seq, r.data_type, r.key, r.deleted, r.deleted_at, r.changed_at, cast(r.doc, Text))
        .where(*_conditions(data_source_id, flt, after=after, upper=upper))
        .order_by(r.seq)
        .limit(limit)
    )
    return [StoredRecord(*row) for row in rows.tuples()]


async def stream_bounds(
    session: AsyncSession, data_source_id: UUID, flt: RecordFilter, *, after: int, limit: int | None
) -> tuple[int, bool]:
    """For a streamed read: the last position it covers (a snapshot) and whether more follow."""
    r = DataSourceRecord
    upper = (
        await session.execute(
            select(func.coalesce(func.max(r.seq), 0)).where(r.data_source_id == data_source_id)
        )
    ).scalar_one()
    if limit is None:
        return max(int(upper), after), False
    boundary = (
        await session.execute(
            select(r.seq)
            .where(*_conditions(data_source_id, flt, after=after, upper=upper))
            .order_by(r.seq)
            .offset(limit - 1)
            .limit(1)
        )
    ).scalar_one_or_none()
    if boundary is None:
        return max(int(upper), after), False
    more = (
        await session.execute(
            select(r.seq)
            .where(*_conditions(data_source_id, flt, after=int(boundary), upper=None))
            .limit(1)
        )
    ).scalar_one_or_none()
    return int(boundary), more is not None


# --- cursors ----------------------------------------------------------------------------------


def encode_cursor(data_source_id: UUID, seq: int) -> str:
    raw = f"{data_source_id.hex[:8]}.{seq}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


MAX_SEQ = 2**63 - 1
"""`seq` is a bigint: a cursor past it cannot be a position."""


def decode_cursor(data_source_id: UUID, cursor: str | None) -> int:
    """The position a cursor stands for (0: the beginning); anything else is 400."""
    if cursor is None or cursor == "":
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        prefix, _, seq = base64.urlsafe_b64decode(padded).decode("ascii").partition(".")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not (seq.isascii() and seq.isdigit() and len(seq) <= 19) or int(seq) > MAX_SEQ:
        raise InvalidCursor()
    if prefix != data_source_id.hex[:8]:
        raise InvalidCursor("The cursor belongs to another data source.")
    return int(seq)


__all__ = [
    "NotAcceptable",
    "RecordFilter",
    "check_rules",
    "create_data_source",
    "decode_cursor",
    "default_title",
    "delete_data_source",
    "encode_cursor",
    "fetch_records",
    "get_data_source",
    "list_data_sources",
    "match_year",
    "record_filter",
    "request_refresh",
    "stream_bounds",
    "update_data_source",
]

"""Data-source endpoints: named imports of Dinero data by type, and their records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.connection.gateway import DineroGateway
from app.datasources import service
from app.datasources.models import DataSource, Phase
from app.datasources.records import csv_header, csv_rows, json_item
from app.datasources.schemas import (
    AccountingYearOut,
    DataSourceCreate,
    DataSourceList,
    DataSourceOut,
    DataSourcePatch,
    DataSourceProblem,
    RecordsPage,
    RefreshOut,
    RefreshRequest,
    TypeProgress,
)
from app.datasources.types import SPECS, DataType, DateField
from app.deps import CompanyAdmin, CompanyMember, SessionDep, SessionFactory, SessionFactoryDep
from app.errors import problem_doc

router = APIRouter(prefix="/v1/companies/{company}/data-sources", tags=["data sources"])

JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
CSV: Final = "text/csv"
STREAM_BATCH: Final = 1000
JSON_DEFAULT_LIMIT: Final = 100
JSON_MAX_LIMIT: Final = 1000
STREAM_MAX_LIMIT: Final = 1_000_000

_ACCEPTED: Final = {
    JSON: JSON,
    "application/*": JSON,
    "*/*": JSON,
    NDJSON: NDJSON,
    "application/ndjson": NDJSON,
    "application/jsonl": NDJSON,
    CSV: CSV,
    "text/*": CSV,
}

_NOT_CONNECTED = problem_doc("Dinero is not connected, or must be reconnected.")
_DINERO_DOWN = problem_doc("Dinero could not be reached to check the accounting year.")
_DINERO_REFUSED = problem_doc("Dinero refused to list the accounting years.")


def get_gateway(request: Request) -> DineroGateway:
    gateway: DineroGateway = request.app.state.services.dinero
    return gateway


GatewayDep = Annotated[DineroGateway, Depends(get_gateway)]
DataSourceId = Annotated[UUID, Path(description="The data source's id.")]


def present(source: DataSource) -> DataSourceOut:
    progress: dict[DataType, TypeProgress] = {}
    states = {state.data_type: state for state in source.types}
    for name in source.data_types:
        state = states.get(name)
        if state is None:
            continue
        started = state.pass_started_at is not None or state.records > 0
        if state.phase == Phase.INCREMENTAL:
            stage = "ready"
        elif state.phase == Phase.FULL or started:
            stage = "importing"
        else:
            stage = "pending"
        progress[DataType(name)] = TypeProgress(
            state=stage,
            records=state.records,
            deleted_records=state.deleted_records,
            refreshed_at=state.refreshed_at,
        )
    year = None
    if source.accounting_year_start is not None and source.accounting_year_end is not None:
        year = AccountingYearOut(
            start=source.accounting_year_start,
            end=source.accounting_year_end,
            name=source.accounting_year_name,
        )
    error = None
    if source.error_code is not None:
        error = DataSourceProblem(
            code=source.error_code,
            message=source.error_message or source.error_code,
            dinero_message=source.error_dinero_message,
        )
    return DataSourceOut(
        id=source.id,
        title=source.title,
        data_types=[DataType(t) for t in source.data_types],
        accounting_year=year,
        default_date_field=(
            DateField(source.default_date_field) if source.default_date_field else None
        ),
        refresh_minutes=source.refresh_minutes,
        organization_id=source.organization_id,
        status=source.status,
        records=sum(p.records for p in progress.values()),
        progress=progress,
        error=error,
        retry_at=source.retry_at,
        created_at=source.created_at,
        updated_at=source.updated_at,
        started_at=source.started_at,
        last_refreshed_at=source.last_refreshed_at,
        next_refresh_at=source.next_refresh_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=DataSourceOut,
    operation_id="create_data_source",
    responses={
        409: _NOT_CONNECTED,
        422: problem_doc(
            "Not valid: e.g. `accounting_year_unknown` (the detail and `valid_years` list the "
            "organization's years), `accounting_year_required`, `date_field_not_available`."
        ),
        502: _DINERO_REFUSED,
        503: _DINERO_DOWN,
    },
)
async def create_data_source(
    body: DataSourceCreate, access: CompanyAdmin, session: SessionDep, gateway: GatewayDep
) -> DataSourceOut:
    """Create a data source; its first import runs in the background."""
    source = await service.create_data_source(
        session=session, gateway=gateway, company_id=access.company.id, body=body
    )
    await session.refresh(source, ["created_at", "updated_at"])
    return present(source)


@router.get("", response_model=DataSourceList, operation_id="list_data_sources")
async def list_data_sources(access: CompanyMember, session: SessionDep) -> DataSourceList:
    """The company's data sources, with their import progress."""
    sources = await service.list_data_sources(session=session, company_id=access.company.id)
    return DataSourceList(items=[present(s) for s in sources])


@router.get("/{data_source_id}", response_model=DataSourceOut, operation_id="get_data_source")
async def get_data_source(
    data_source_id: DataSourceId, access: CompanyMember, session: SessionDep
) -> DataSourceOut:
    """One data source: status, progress per data type, last and next refresh."""
    source = await service.get_data_source(
        session=session, company_id=access.company.id, data_source_id=data_source_id
    )
    return present(source)


@router.patch(
    "/{data_source_id}",
    response_model=DataSourceOut,
    operation_id="update_data_source",
    responses={
        422: problem_doc("Not valid, e.g. `accounting_year_immutable`."),
    },
)
async def update_data_source(
    data_source_id: DataSourceId, body: DataSourcePatch, access: CompanyAdmin, session: SessionDep
) -> DataSourceOut:
    """Change title, data types (added ones are imported), date field or refresh interval."""
    source = await service.update_data_source(
        session=session, company_id=access.company.id, data_source_id=data_source_id, body=body
    )
    await session.refresh(source, ["updated_at"])
    return present(source)


@router.delete("/{data_source_id}", status_code=204, operation_id="delete_data_source")
async def delete_data_source(
    data_source_id: DataSourceId, access: CompanyAdmin, session: SessionDep
) -> Response:
    """Delete the data source and its records; a run going on stops."""
    await service.delete_data_source(
        session=session, company_id=access.company.id, data_source_id=data_source_id
    )
    return Response(status_code=204)


@router.post(
    "/{data_source_id}/refresh",
    status_code=202,
    response_model=RefreshOut,
    operation_id="refresh_data_source",
)
async def refresh_data_source(
    data_source_id: DataSourceId,
    access: CompanyAdmin,
    session: SessionDep,
    body: RefreshRequest | None = None,
) -> RefreshOut:
    """Refresh now (only what changed, or everything with `full`); runs in the background."""
    source, queued = await service.request_refresh(
        session=session,
        company_id=access.company.id,
        data_source_id=data_source_id,
        full=body.full if body is not None else False,
    )
    await session.refresh(source, ["updated_at"])
    return RefreshOut(status="queued" if queued else "already_queued", data_source=present(source))


# --- records ----------------------------------------------------------------------------------


def negotiate(accept: str | None) -> str:
    """The format for an Accept header (JSON when absent), or a 406."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for order, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        chosen = _ACCEPTED.get(media.lower())
        if chosen is None or quality <= 0:
            continue
        candidate = (quality, -order, chosen)
        if best is None or candidate > best:
            best = candidate
    if best is None:
        raise service.NotAcceptable(
            f"Records are available as {JSON}, {NDJSON} or {CSV}; the Accept header allows "
            "none of them.",
            extra={"available": [JSON, NDJSON, CSV]},
        )
    return best[2]


_RECORDS_200: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "JSON (a page, `next_cursor`), NDJSON (one record per line) or CSV (one data type; "
            "Dinero's fields as columns), by `Accept`. NDJSON and CSV are streamed and carry "
            "`Next-Cursor` and `Has-More` headers."
        ),
        "content": {
            NDJSON: {"schema": {"type": "string"}},
            CSV: {"schema": {"type": "string"}},
        },
    },
    406: problem_doc("The Accept header allows none of JSON, NDJSON and CSV."),
    400: problem_doc("The cursor is not one this API gave out (`invalid_cursor`)."),
    422: problem_doc(
        "Not valid: `data_type_not_in_source`, `date_field_required`, "
        "`date_field_not_available`, `csv_needs_one_data_type`."
    ),
}


@router.get(
    "/{data_source_id}/records",
    response_model=RecordsPage,
    operation_id="list_data_source_records",
    responses=_RECORDS_200,
)
async def list_records(
    request: Request,
    data_source_id: DataSourceId,
    access: CompanyMember,
    session: SessionDep,
    sessions: SessionFactoryDep,
    data_type: Annotated[
        list[DataType] | None, Query(description="Only these types (repeat for several).")
    ] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of an earlier read.")] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=STREAM_MAX_LIMIT,
            description=f"JSON: default {JSON_DEFAULT_LIMIT}, at most {JSON_MAX_LIMIT}. "
            "NDJSON and CSV: everything when left out.",
        ),
    ] = None,
    date_field: Annotated[
        DateField | None, Query(description="The date filtered on (default: the data source's).")
    ] = None,
    date_from: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="From this day (incl.).")
    ] = None,
    date_to: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="To this day (incl.).")
    ] = None,
    include_deleted: Annotated[
        bool, Query(description="Also records deleted in Dinero (marked `deleted`).")
    ] = False,
) -> Response:
    """Read the records: JSON pages with cursors, or NDJSON / CSV streams (by `Accept`)."""
    media = negotiate(request.headers.get("accept"))
    source = await service.get_data_source(
        session=session, company_id=access.company.id, data_source_id=data_source_id
    )
    types = list(dict.fromkeys(data_type or []))
    if media == CSV and len(types) != 1:
        if len(types) == 0 and len(source.data_types) == 1:
            types = [DataType(source.data_types[0])]
        else:
            raise service.invalid(
                "csv_needs_one_data_type",
                "data_type",
                "CSV holds one data type at a time: give exactly one data_type.",
            )
    flt = service.record_filter(
        source,
        data_types=types,
        include_deleted=include_deleted,
        date_field=date_field,
        date_from=date_from,
        date_to=date_to,
    )
    after = service.decode_cursor(source.id, cursor)
    if media == JSON:
        size = min(limit or JSON_DEFAULT_LIMIT, JSON_MAX_LIMIT)
        records = await service.fetch_records(session, source.id, flt, after=after, limit=size + 1)
        more = len(records) > size
        records = records[:size]
        position = records[-1].seq if records else after
        next_cursor = service.encode_cursor(source.id, position) if position else None
        body = (
            '{"items":['
            + ",".join(json_item(record) for record in records)
            + f'],"next_cursor":{_json_str(next_cursor)},"has_more":{_json_bool(more)}}}'
        )
        return Response(content=body, media_type=JSON)

    end, more = await service.stream_bounds(session, source.id, flt, after=after, limit=limit)
    headers = {"Has-More": _json_bool(more), "Cache-Control": "no-store"}
    if end:
        headers["Next-Cursor"] = service.encode_cursor(source.id, end)
    chunks = _stream(sessions, source.id, flt, media=media, after=after, upper=end)
    content_type = f"{CSV}; charset=utf-8" if media == CSV else NDJSON
    return StreamingResponse(chunks, media_type=content_type, headers=headers)


async def _stream(
    sessions: SessionFactory,
    data_source_id: UUID,
    flt: service.RecordFilter,
    *,
    media: str,
    after: int,
    upper: int,
) -> AsyncIterator[str]:
    """Batches read in short transactions of their own (the request's is over by now)."""
    spec = SPECS[flt.data_types[0]] if media == CSV else None
    if spec is not None:
        yield csv_header(spec)
    position = after
    while position < upper:
        async with sessions() as session:
            batch = await service.fetch_records(
                session, data_source_id, flt, after=position, limit=STREAM_BATCH, upper=upper
            )
        if not batch:
            return
        if spec is not None:
            yield csv_rows(spec, batch)
        else:
            yield "".join(json_item(record) + "\n" for record in batch)
        position = batch[-1].seq
        if len(batch) < STREAM_BATCH:
            return


def _json_str(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _json_bool(value: bool) -> str:
    return "true" if value else "false"

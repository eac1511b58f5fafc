"""History endpoints: what changed in the mappings and categories, when, and by whom."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.chart.service import get_category
from app.deps import CompanyMember, SessionDep
from app.errors import problem_doc
from app.history import service
from app.history.models import SettingsChange
from app.history.schemas import FieldChange, SettingsChangeOut, SettingsChangePage
from app.inputs import Moment

router = APIRouter(tags=["chart"])

COMPANY = "/v1/companies/{company}"

_CURSOR_400 = problem_doc("The cursor is not one this API gave out (`invalid_cursor`).")

Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)]


def change_out(change: SettingsChange) -> SettingsChangeOut:
    return SettingsChangeOut(
        id=change.id,
        kind=change.kind,
        setting=change.setting,
        category_id=change.category_id,
        changes={
            field: FieldChange.model_validate(value) for field, value in change.changes.items()
        },
        state=change.state,
        changed_at=change.changed_at,
        changed_by=change.changed_by,
        source=change.source,
    )


def _page(page: service.Page) -> SettingsChangePage:
    return SettingsChangePage(
        items=[change_out(change) for change in page.changes], next_cursor=page.next_cursor
    )


@router.get(
    f"{COMPANY}/dinero/settings/history",
    response_model=SettingsChangePage,
    operation_id="list_settings_history",
    responses={400: _CURSOR_400},
)
async def list_settings_history(
    access: CompanyMember,
    session: SessionDep,
    since: Annotated[
        Moment | None,
        Query(
            description="Only changes at or after this moment (RFC 3339 with a UTC offset, "
            "e.g. the last export's time)."
        ),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = service.DEFAULT_PAGE_SIZE,
) -> SettingsChangePage:
    """Mapping and category changes, oldest first: what changed since a time, and who did it."""
    page = await service.list_changes(
        session, company_id=access.company.id, since=since, cursor=cursor, limit=limit
    )
    return _page(page)


@router.get(
    f"{COMPANY}/categories/{{category_id}}/history",
    response_model=SettingsChangePage,
    operation_id="list_category_history",
    responses={400: _CURSOR_400, 404: problem_doc("No such category (`category_not_found`).")},
)
async def list_category_history(
    category_id: uuid.UUID,
    access: CompanyMember,
    session: SessionDep,
    cursor: Cursor = None,
    limit: Limit = service.DEFAULT_PAGE_SIZE,
) -> SettingsChangePage:
    """One category's changes, oldest first: its names, default tax code, hiding, Dinero state."""
    await get_category(session, access.company.id, category_id)
    page = await service.list_changes(
        session,
        company_id=access.company.id,
        category_id=category_id,
        cursor=cursor,
        limit=limit,
    )
    return _page(page)

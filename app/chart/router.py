"""Chart endpoints: sync, categories, tax codes, deposit accounts and account settings."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from app import jobs
from app.chart import service
from app.chart.models import Category, ChartSync
from app.chart.schemas import (
    CategoryOut,
    CategoryPatch,
    DepositAccountOut,
    SyncOut,
    TaxCodeOut,
)
from app.chart.tasks import request_sync
from app.connection.gateway import NotConnected
from app.connection.models import ConnectionStatus, DineroConnection, get_connection
from app.deps import CompanyAdmin, CompanyMember, SessionDep
from app.errors import problem_doc

router = APIRouter(tags=["chart"])

COMPANY = "/v1/companies/{company}"


def _category_out(category: Category) -> CategoryOut:
    return CategoryOut(
        id=category.id,
        account_number=category.account_number,
        account_name=category.account_name,
        name=category.name or category.account_name,
        custom_name=category.name,
        tax_code=category.tax_code,
        active=category.active,
        inactive_reason=category.inactive_reason,
        hidden=category.hidden,
    )


def _requested_at(state: ChartSync | None, connection: DineroConnection | None) -> datetime | None:
    """When a sync was last asked for: by the admin or the schedule, or by connecting.

    Connecting enqueues a sync (`jobs.request_chart_sync`) without writing the chart's state,
    so a connection made since the last sync started is a request too.
    """
    requested = state.requested_at if state is not None else None
    connected = connection.connected_at if connection is not None else None
    if connected is not None and (requested is None or connected > requested):
        started = state.started_at if state is not None else None
        if started is None or connected > started:
            return connected
    return requested


def _sync_out(state: ChartSync | None, connection: DineroConnection | None) -> SyncOut:
    requested_at = _requested_at(state, connection)
    if state is None and requested_at is None:
        return SyncOut(status="never")
    status = state.status if state is not None else "never"
    started_at = state.started_at if state is not None else None
    waiting = requested_at is not None and (started_at is None or requested_at > started_at)
    if waiting and status != "running":
        status = "queued"
    if state is None:
        return SyncOut(status=status, requested_at=requested_at)
    # The row's own times, error and changes; the status and request time as worked out above.
    return SyncOut.model_validate(state, from_attributes=True).model_copy(
        update={"status": status, "requested_at": requested_at}
    )


@router.post(
    f"{COMPANY}/dinero/sync",
    status_code=202,
    response_model=SyncOut,
    operation_id="request_chart_sync",
    responses={409: problem_doc("Dinero is not connected (or must be reconnected).")},
)
async def request_chart_sync(access: CompanyAdmin, session: SessionDep) -> SyncOut:
    """Sync the chart of accounts and VAT types from Dinero now, in the background."""
    connection = await get_connection(session=session, company_id=access.company.id)
    if connection is None or connection.status != ConnectionStatus.CONNECTED:
        raise NotConnected("Connect Dinero before syncing the chart of accounts.")
    await request_sync(session, access.company.id)
    return _sync_out(await session.get(ChartSync, access.company.id), connection)


@router.get(f"{COMPANY}/dinero/sync", response_model=SyncOut, operation_id="get_chart_sync")
async def get_chart_sync(access: CompanyMember, session: SessionDep) -> SyncOut:
    """The state of the chart sync: queued, running, when it last succeeded, why it failed."""
    connection = await get_connection(session=session, company_id=access.company.id)
    return _sync_out(await session.get(ChartSync, access.company.id), connection)


@router.get(
    f"{COMPANY}/categories", response_model=list[CategoryOut], operation_id="list_categories"
)
async def list_categories(
    access: CompanyMember, session: SessionDep, visible_only: bool = False
) -> list[CategoryOut]:
    """Expense categories, one per purchase account; `visible_only` gives employees' list."""
    categories = await service.list_categories(session, access.company.id)
    if visible_only:
        categories = [c for c in categories if c.active and not c.hidden]
    return [_category_out(c) for c in categories]


@router.patch(
    f"{COMPANY}/categories/{{category_id}}",
    response_model=CategoryOut,
    operation_id="update_category",
)
async def update_category(
    category_id: uuid.UUID, body: CategoryPatch, access: CompanyAdmin, session: SessionDep
) -> CategoryOut:
    """Rename a category, hide it from employees, or set its default tax code."""
    changes = body.model_dump(exclude_unset=True)
    category = await service.update_category(
        session, access.company.id, category_id, changes, changed_by=access.principal.subject
    )
    await jobs.wake_exports(session, access.company.id)  # items waiting on it may go now
    return _category_out(category)


@router.get(f"{COMPANY}/tax-codes", response_model=list[TaxCodeOut], operation_id="list_tax_codes")
async def list_tax_codes(access: CompanyMember, session: SessionDep) -> list[TaxCodeOut]:
    """Dinero's VAT types for the organization, plus `none` (no VAT)."""
    codes = await service.present_tax_codes(session, access.company.id)
    return [TaxCodeOut(code=c.code, name=c.name, rate=c.rate) for c in codes]


@router.get(
    f"{COMPANY}/deposit-accounts",
    response_model=list[DepositAccountOut],
    operation_id="list_deposit_accounts",
)
async def list_deposit_accounts(
    access: CompanyMember, session: SessionDep
) -> list[DepositAccountOut]:
    """The deposit accounts ("Beholdning") the account settings can use."""
    accounts = await service.deposit_accounts(session, access.company.id)
    return [
        DepositAccountOut(
            account_number=a.account_number,
            name=a.name,
            is_default=a.is_default_deposit,
            bank_registration_number=a.bank_registration_number,
            bank_account_number=a.bank_account_number,
            bank_iban_number=a.bank_iban_number,
        )
        for a in accounts
    ]

"""The account settings endpoints: the chart's mappings, and which export types they let run.

The mappings are the chart's (`app/chart/service.py`); whether an export type is ready, and
which categories queued items still use, is the exports' (`readiness.py`). So the two routes
live here, above both, with the chart's tag and paths.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.chart import service as chart
from app.chart.schemas import MappingProblemOut, SettingsIn
from app.deps import CompanyAdmin, CompanyMember, SessionDep
from app.exports import closed, readiness

router = APIRouter(tags=["chart"])

COMPANY = "/v1/companies/{company}"


class ExportReadiness(BaseModel):
    ready: bool
    missing: list[str] = Field(description="The settings fields this export type still needs.")
    message: str | None = None


class ClosedYearOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    first_day: date
    last_day: date
    refused_at: datetime = Field(description="When Dinero last refused to book into it.")
    dinero_message: str | None = Field(description="What Dinero said.")


class SettingsOut(SettingsIn):
    model_config = ConfigDict(extra="ignore")

    exports: dict[str, ExportReadiness] = Field(
        description="For each export type: ready, or which mapping it still lacks."
    )
    problems: list[MappingProblemOut] = Field(
        description="Mappings or categories that need the admin's attention."
    )
    closed_accounting_years: list[ClosedYearOut] = Field(
        description="Accounting years Dinero refused to book into as closed in the last day: "
        "items dated in them wait (`accounting_year_closed`) without a request to Dinero. "
        "Reopen the year in Dinero, then retry one of them; otherwise one request a day tries."
    )


async def _settings_out(session: AsyncSession, company_id: str) -> SettingsOut:
    settings = await chart.get_settings(session, company_id)
    usable = await chart.usable_deposit_accounts(session, company_id)
    ready = await readiness.readiness(session, company_id, settings, usable)
    problems = await readiness.mapping_problems(session, company_id, settings, usable)
    return SettingsOut(
        deposit_account=settings.deposit_account,
        out_of_pocket_account=settings.out_of_pocket_account,
        reimbursement_account=settings.reimbursement_account,
        top_up_account=settings.top_up_account,
        books_closed_through=settings.books_closed_through,
        closed_period_policy=chart.lock_policy(settings),
        closed_accounting_years=[
            ClosedYearOut.model_validate(year)
            for year in await closed.closed_years(session, company_id)
        ],
        exports={
            r.export_type: ExportReadiness(ready=r.ready, missing=r.missing, message=r.message)
            for r in ready
        },
        problems=[MappingProblemOut.model_validate(p) for p in problems],
    )


@router.get(
    f"{COMPANY}/dinero/settings", response_model=SettingsOut, operation_id="get_dinero_settings"
)
async def get_dinero_settings(access: CompanyMember, session: SessionDep) -> SettingsOut:
    """The account mappings, which export types are ready, and what needs attention."""
    return await _settings_out(session, access.company.id)


@router.put(
    f"{COMPANY}/dinero/settings", response_model=SettingsOut, operation_id="put_dinero_settings"
)
async def put_dinero_settings(
    body: SettingsIn, access: CompanyAdmin, session: SessionDep
) -> SettingsOut:
    """Set the account mappings (each must be one of the synced deposit accounts) and, when
    given, the lock date and its policy."""
    values = body.model_dump(exclude={"books_closed_through"})
    if "books_closed_through" in body.model_fields_set:
        values["books_closed_through"] = body.books_closed_through
    changed_by = access.principal.subject
    await chart.put_settings(session, access.company.id, values, changed_by=changed_by)
    # Items waiting for a mapping, or for the lock date, may go now.
    await jobs.wake_exports(session, access.company.id)
    return await _settings_out(session, access.company.id)

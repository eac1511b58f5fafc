"""The account settings endpoints: the chart's mappings, and which export types they let run.

The mappings are the chart's (`app/chart/service.py`); whether an export type is ready, and
which categories queued items still use, is the exports' (`readiness.py`). So the two routes
live here, above both, with the chart's tag and paths.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.chart import service as chart
from app.chart.schemas import MappingProblemOut, SettingsIn
from app.deps import CompanyAdmin, CompanyMember, SessionDep
from app.exports import readiness

router = APIRouter(tags=["chart"])

COMPANY = "/v1/companies/{company}"


class ExportReadiness(BaseModel):
    ready: bool
    missing: list[str] = Field(description="The settings fields this export type still needs.")
    message: str | None = None


class SettingsOut(SettingsIn):
    model_config = ConfigDict(extra="ignore")

    exports: dict[str, ExportReadiness] = Field(
        description="For each export type: ready, or which mapping it still lacks."
    )
    problems: list[MappingProblemOut] = Field(
        description="Mappings or categories that need the admin's attention."
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
        exports={
            r.export_type: ExportReadiness(ready=r.ready, missing=r.missing, message=r.message)
            for r in ready
        },
        problems=[
            MappingProblemOut(
                code=p.code,
                message=p.message,
                field=p.field,
                account_number=p.account_number,
                category_id=p.category_id,
            )
            for p in problems
        ],
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
    """Set the account mappings; each must be one of the synced deposit accounts."""
    await chart.put_settings(
        session, access.company.id, body.model_dump(), changed_by=access.principal.subject
    )
    await jobs.wake_exports(session, access.company.id)  # items waiting for a mapping may go now
    return await _settings_out(session, access.company.id)

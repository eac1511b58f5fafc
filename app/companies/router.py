"""Company endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from app.companies.schemas import CompanyOut
from app.deps import CompanyMember

router = APIRouter(prefix="/v1/companies", tags=["companies"])


@router.get("/{company}", response_model=CompanyOut)
async def get_company(access: CompanyMember) -> CompanyOut:
    """The caller's company as this service knows it."""
    return CompanyOut(id=access.company.id, created_at=access.company.created_at)

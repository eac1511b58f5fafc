"""`POST …/dinero/deposit-accounts`: create a deposit account in Dinero from the setup step."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deposit_accounts import service
from app.deposit_accounts.schemas import DepositAccountCreated, DepositAccountCreateIn
from app.deps import CompanyAdmin, SessionDep
from app.errors import problem_doc
from app.services import Services

router = APIRouter(tags=["chart"])


@router.post(
    "/v1/companies/{company}/dinero/deposit-accounts",
    status_code=201,
    response_model=DepositAccountCreated,
    operation_id="create_deposit_account",
    responses={
        200: {
            "model": DepositAccountCreated,
            "description": "Dinero already had the account (a repeated request): nothing new "
            "was created; the sync and the mapping were done as asked.",
        },
        409: problem_doc("Not connected, the number is taken, or another creation runs."),
        502: problem_doc("Dinero refused to create the account."),
        503: problem_doc("Dinero could not be reached, or the chart not synced after."),
    },
)
async def create_deposit_account(
    body: DepositAccountCreateIn,
    access: CompanyAdmin,
    session: SessionDep,
    request: Request,
    response: Response,
) -> DepositAccountCreated:
    """Create a deposit account ("Beholdning (fx bank)") in Dinero, sync, and optionally map it.

    Safe to repeat: an account Dinero already has (same number and name, or without a number a
    deposit account of that name) is answered with 200 and `created: false`.
    """
    services: Services = request.app.state.services
    outcome = await service.create_deposit_account(
        services=services,
        session=session,
        company_id=access.company.id,
        name=body.name,
        number=body.number,
        use_as=body.use_as,
    )
    if not outcome.created:
        response.status_code = 200
    return DepositAccountCreated(
        account_number=outcome.account_number,
        name=outcome.name,
        created=outcome.created,
        mapped_as=outcome.mapped_as,
    )

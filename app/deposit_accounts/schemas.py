"""API shapes for creating a deposit account in Dinero from the setup."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.inputs import SafeStr

UseAs = Literal["deposit", "out_of_pocket", "reimbursement", "top_up"]
"""Which account setting the new account fills: `deposit` is `deposit_account`, and so on."""


class DepositAccountCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeStr = Field(
        min_length=1,
        max_length=255,
        description="The account's name in Dinero's Kontoplan, e.g. \"Pleo\".",
        examples=["Pleo"],
    )
    number: StrictInt | None = Field(
        default=None,
        ge=1,
        le=99_999_999,
        description="The account number; by default the first number in 55000-55999 that the "
        "chart does not use.",
    )
    use_as: UseAs | None = Field(
        default=None,
        description="Also map the new account as this setting (`deposit` = `deposit_account`, "
        "`out_of_pocket` = `out_of_pocket_account`, …).",
    )


class DepositAccountCreated(BaseModel):
    account_number: int
    name: str
    created: bool = Field(
        description="False when Dinero already had this account (a repeated request): nothing "
        "new was created."
    )
    mapped_as: str | None = Field(
        default=None, description="The setting now pointing at the account, e.g. `deposit_account`."
    )

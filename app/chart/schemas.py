"""API shapes for the chart: categories, tax codes, deposit accounts, settings, sync state."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from app.inputs import IsoDate, SafeStr


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_number: int = Field(description="The purchase account in Dinero (2000-9399).")
    account_name: str = Field(description="Dinero's current name of the account.")
    name: str = Field(description="What employees see: the admin's name, else Dinero's.")
    custom_name: str | None = Field(description="The admin's name, if any.")
    tax_code: str | None = Field(description="Default tax code (a Dinero VAT code or `none`).")
    active: bool = Field(description="False while the account is hidden in or gone from Dinero.")
    inactive_reason: Literal["hidden_in_dinero", "removed_from_dinero"] | None = None
    hidden: bool = Field(description="Hidden from employees by an admin.")


class CategoryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeStr | None = Field(
        default=None, max_length=255, description="A friendly name; null or empty resets it."
    )
    tax_code: SafeStr | None = Field(
        default=None, max_length=32, description="One of the tax codes; null clears the default."
    )
    hidden: StrictBool | None = None


class TaxCodeOut(BaseModel):
    code: str
    name: str
    rate: Decimal = Field(description='The VAT rate as a decimal string, e.g. "0.25".')


class DepositAccountOut(BaseModel):
    account_number: int
    name: str
    is_default: bool = Field(description="Dinero's default deposit account.")
    bank_registration_number: str | None = None
    bank_account_number: str | None = None
    bank_iban_number: str | None = None


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deposit_account: StrictInt | None = Field(
        default=None, description="The deposit account the company card / wallet spends from."
    )
    out_of_pocket_account: StrictInt | None = Field(
        default=None, description="What employees' own-money expenses are booked against."
    )
    reimbursement_account: StrictInt | None = Field(
        default=None, description="The company bank account reimbursements are paid from."
    )
    top_up_account: StrictInt | None = Field(
        default=None,
        description="The bank account wallet top-ups come from; null uses the reimbursement one.",
    )
    books_closed_through: IsoDate | None = Field(
        default=None,
        description="The lock date: nothing dated on or before it is exported; such items wait "
        "(`period_closed`) until it is moved back or cleared. Null: no lock. Left out of a PUT, "
        "it keeps its value (the accounts are replaced as sent); null clears it.",
    )
    closed_period_policy: Literal["hold", "first_open_day"] | None = Field(
        default=None,
        description="What an item dated on or before `books_closed_through` does: `hold` "
        "(wait, `period_closed`, until the lock date moves) or `first_open_day` (posted in "
        "Dinero on the day after the lock date, its own date first in each line's text as "
        "`bilagsdato …`). Left out of a PUT (or null), it keeps its value; `hold` at first.",
    )


class MappingProblemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    message: str
    field: str | None = None
    account_number: int | None = None
    category_id: uuid.UUID | None = None


class SyncOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: Literal["never", "queued", "running", "succeeded", "failed"]
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    succeeded_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    changes: int = Field(default=0, description="Rows the last sync changed (0: nothing new).")

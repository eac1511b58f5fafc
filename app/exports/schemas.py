"""API shapes for exports: the items the platform sends, and what the API answers about them.

Money is always an integer number of minor units (øre, cents): a float or a string is refused,
never rounded. The input models are validated one item at a time (see `intake.py`), so one bad
item in a batch is refused by itself while the others go on.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from datetime import date as Day  # a field below is called `date`
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.exports.models import ItemStatus, ItemType
from app.inputs import IsoDate, SafeStrictStr, checked_if_text
from app.preview.schemas import LineExplanation

MAX_MINOR_UNITS = 10**15
"""Largest absolute amount accepted, in minor units (10 trillion DKK): far beyond any expense."""
MAX_ITEMS_PER_REQUEST = 500
MAX_RECEIPTS_PER_ITEM = 10
MAX_LINES_PER_ITEM = 200

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _minor_units(value: object) -> int:
    # bool is an int subclass in Python; JSON true is not an amount.
    if type(value) is not int:
        raise PydanticCustomError(
            "minor_units",
            "Amounts are whole numbers of minor units (øre, cents), e.g. 24500 for 245.00; "
            "got {got}.",
            {"got": repr(value)},
        )
    if abs(value) > MAX_MINOR_UNITS:
        raise PydanticCustomError(
            "minor_units_range", "The amount is out of range (at most 10^15 minor units)."
        )
    return value


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise PydanticCustomError(
            "currency_format",
            "Give the currency as a three-letter ISO 4217 code in capitals, e.g. DKK; got {got}.",
            {"got": repr(value)},
        )
    return value


# The checks of a BeforeValidator are not in the JSON schema by themselves: said explicitly.
MinorUnits = Annotated[
    int,
    BeforeValidator(_minor_units),
    Field(json_schema_extra={"minimum": -MAX_MINOR_UNITS, "maximum": MAX_MINOR_UNITS}),
]
Currency = Annotated[
    str,
    BeforeValidator(_currency),
    Field(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code in capitals, e.g. DKK, EUR.",
        json_schema_extra={"pattern": r"^[A-Z]{3}$"},
    ),
]


class Money(BaseModel):
    value: MinorUnits = Field(
        description="Minor units (øre, cents) as an integer; negative for a refund, unload or "
        "pay-back. Floats and strings are refused."
    )
    currency: Currency


class LineIn(BaseModel):
    """One category/VAT split of an expense; give a category or an account number, not both."""

    category_id: uuid.UUID | None = Field(
        default=None, description="One of the company's categories (`GET …/categories`)."
    )
    account_number: StrictInt | None = Field(
        default=None, ge=1, le=99_999_999, description="A Dinero account number, instead."
    )
    tax_code: SafeStrictStr | None = Field(
        default=None, min_length=1, max_length=32, description="A tax code, e.g. I25; or none."
    )
    amount: MinorUnits = Field(description="In the item's currency, minor units.")
    description: SafeStrictStr | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _one_target(self) -> LineIn:
        if (self.category_id is None) == (self.account_number is None):
            raise PydanticCustomError(
                "line_target", "Give exactly one of category_id or account_number."
            )
        return self


class ReceiptIn(BaseModel):
    """A receipt: a link on an allowed host, or the file itself in base64 (not both)."""

    url: SafeStrictStr | None = Field(
        default=None,
        max_length=2048,
        description="An https link on one of RECEIPT_ALLOWED_HOSTS.",
    )
    content_base64: SafeStrictStr | None = Field(
        default=None, description="The file, standard base64 (at most 10 MB decoded)."
    )
    filename: SafeStrictStr | None = Field(default=None, max_length=255)
    content_type: SafeStrictStr | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _one_source(self) -> ReceiptIn:
        if (self.url is None) == (self.content_base64 is None):
            raise PydanticCustomError(
                "receipt_source", "Give exactly one of url or content_base64."
            )
        return self


class EmployeeIn(BaseModel):
    id: Annotated[StrictStr | StrictInt | None, BeforeValidator(checked_if_text)] = Field(
        default=None, description="The platform's id."
    )
    name: SafeStrictStr | None = Field(default=None, max_length=255)


class ExportItemIn(BaseModel):
    """An expense, reimbursement or wallet top-up to export; unique per company and type."""

    external_id: SafeStrictStr = Field(
        min_length=1, max_length=255, description="The platform's id of the item."
    )
    type: ItemType
    date: IsoDate = Field(description="The voucher date, YYYY-MM-DD.")
    description: SafeStrictStr | None = Field(default=None, max_length=2000)
    amount: Money
    settled_amount: Money | None = Field(
        default=None,
        description="What was settled in DKK; required when `amount` is not in DKK, same sign.",
    )
    lines: list[LineIn] = Field(
        default_factory=list,
        max_length=MAX_LINES_PER_ITEM,
        description="Expenses: at least one, summing exactly to `amount.value`. "
        "Reimbursements and top-ups: none.",
    )
    receipts: list[ReceiptIn] = Field(default_factory=list, max_length=MAX_RECEIPTS_PER_ITEM)
    employee: EmployeeIn | None = None


REPLACE_DESCRIPTION = (
    "Export a `reversed` item again, corrected (same `type` and `external_id`): it is queued "
    "with this content and gets a new voucher. Without it, an item already stored is left as "
    "it is (a no-op), and so are items that are not reversed."
)


class ExportRequest(BaseModel):
    """Items to export. Each is checked by itself: bad ones are refused with their reason."""

    # SkipValidation: the schema documents the item shape, but items arrive unvalidated so that
    # one bad item does not refuse the whole batch (intake validates each one).
    items: list[SkipValidation[ExportItemIn]] = Field(
        min_length=1, max_length=MAX_ITEMS_PER_REQUEST
    )
    replace: StrictBool = Field(default=False, description=REPLACE_DESCRIPTION)


class WebhookEnvelope(BaseModel):
    """The signed webhook's body for `export.requested` (items are checked one by one)."""

    type: Literal["export.requested"]
    company_id: SafeStrictStr = Field(min_length=1, max_length=128)
    items: list[Any] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)
    replace: StrictBool = False


ExportStatus = Literal["accepted", "completed", "completed_with_errors"]


class RejectedItem(BaseModel):
    """An item refused at intake; nothing of it was stored except this reason."""

    index: int = Field(description="Its position in the request's `items` (from 0).")
    external_id: str | None
    code: str = Field(description="Stable reason, e.g. receipt_host_not_allowed.")
    message: str
    errors: dict[str, str] = Field(description="Field of the item → what is wrong with it.")


class AcceptedItem(BaseModel):
    id: uuid.UUID
    external_id: str
    type: ItemType
    status: ItemStatus
    repeated: bool = Field(
        description="True when the item was already known (sent before): nothing new was stored."
    )


class ExportAccepted(BaseModel):
    """The answer to an export request (REST or webhook)."""

    id: uuid.UUID
    status: ExportStatus
    source: Literal["api", "webhook"]
    created_at: datetime
    items: list[AcceptedItem]
    rejected: list[RejectedItem]


class WebhookIgnored(BaseModel):
    """A verified webhook of a type this service does not handle: acknowledged, nothing stored."""

    status: Literal["ignored"]
    type: str
    detail: str


class MoneyOut(BaseModel):
    value: int
    currency: str


class WaitingOut(BaseModel):
    code: str
    message: str | None


class FailureOut(BaseModel):
    code: str
    message: str | None
    dinero_message: str | None = Field(description="Dinero's own text, when Dinero refused.")


class DineroRefOut(BaseModel):
    kind: str | None = Field(description="purchase_voucher, manual_voucher or ledger_item.")
    voucher_guid: uuid.UUID | None = None
    ledger_item_id: uuid.UUID | None = None
    voucher_number: int | None = None
    file_guid: str | None = None
    url: str | None = Field(
        default=None, description="A link into Dinero's web app, when one is known (not yet)."
    )


class ChangeOut(BaseModel):
    """One difference between the draft as exported and as it is now in Dinero."""

    field: str = Field(
        description="e.g. `lines[0].account_number`, `lines[0].amount`, `total`, `file_guid`."
    )
    sent: Any = Field(description='As exported (amounts in DKK as strings, e.g. "200.00").')
    now: Any = Field(description="As it is in Dinero now.")


class EditedOut(BaseModel):
    """The accountant changed the draft in Dinero (another account, another amount…)."""

    detected_at: datetime
    changes: list[ChangeOut]


class LateReceiptOut(BaseModel):
    """A receipt that arrived after the item was exported."""

    status: Literal["pending", "attached", "not_attached"] = Field(
        description="pending: stored, the draft's file is replaced shortly (same voucher); "
        "attached: the draft carries it; not_attached: the voucher was approved first (or is a "
        "refund): attach it in Dinero by hand."
    )
    message: str | None


class ItemSummary(BaseModel):
    id: uuid.UUID
    export_id: uuid.UUID
    external_id: str
    type: ItemType
    status: ItemStatus
    date: date
    posting_date: Day | None = Field(
        default=None,
        description="The date it was posted with in Dinero: its own date, or the first open day "
        "after the lock date (`closed_period_policy: first_open_day`); null before it was sent.",
    )
    description: str | None
    amount: MoneyOut
    waiting: WaitingOut | None = Field(description="Why the item waits (mapping, connection…).")
    failure: FailureOut | None
    dinero: DineroRefOut | None = Field(
        description="Where it is in Dinero: the voucher or ledger item, and its voucher number "
        "once Dinero gave one (a booked ledger item, an approved voucher)."
    )
    created_at: datetime
    updated_at: datetime


class LineOut(BaseModel):
    category_id: uuid.UUID | None
    account_number: int | None
    tax_code: str | None
    amount: int = Field(description="In the item's currency, minor units.")
    dkk_amount: int = Field(description="In DKK øre (the settled amount, allocated over lines).")
    description: str | None
    explained_by: LineExplanation | None = Field(
        default=None,
        description="Why the line went where it did, stored when its request to Dinero was "
        "built (null before): it never changes after the fact.",
    )


class ReceiptOut(BaseModel):
    source: Literal["url", "inline"]
    filename: str | None
    content_type: str | None


class EmployeeOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | int | None = None
    name: str | None = None


class ItemOut(ItemSummary):
    """One item in full: what was sent, where it is, and what Dinero made of it."""

    settled_amount: MoneyOut | None
    lines: list[LineOut]
    employee: EmployeeOut | None
    receipts: list[ReceiptOut]
    attempts: int
    next_attempt_at: datetime | None
    exported_at: datetime | None = Field(description="When the draft or ledger item was made.")
    booked_at: datetime | None = Field(
        description="When the item was seen booked (approved with Godkend, for drafts)."
    )
    edited_in_dinero: EditedOut | None = Field(
        description="The draft differs from what was exported: what changed in Dinero."
    )
    late_receipt: LateReceiptOut | None
    explained_by: list[LineExplanation] | None = Field(
        default=None,
        description="Why each line posted in Dinero went where it did, in the order sent (a "
        "reimbursement's or top-up's one ledger line included), stored when the request was "
        "built; null before. An expense's are also on its `lines`.",
    )


class ExportOut(BaseModel):
    id: uuid.UUID
    status: ExportStatus = Field(
        description="accepted while an item is still on its way; completed when every item is "
        "settled and none failed; completed_with_errors when every item is settled and some failed."
    )
    source: Literal["api", "webhook"]
    created_at: datetime
    items: list[ItemSummary]
    rejected: list[RejectedItem]
    counts: dict[str, int] = Field(description="Items per status.")


class ItemPage(BaseModel):
    items: list[ItemSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")

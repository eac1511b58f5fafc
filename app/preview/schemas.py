"""API shapes of the posting preview and of a posted line's explanation."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class AccountRef(BaseModel):
    account_number: int
    name: str | None = Field(description="Dinero's name of the account (as last synced).")


class CategoryRef(BaseModel):
    id: uuid.UUID
    name: str = Field(description="The friendly name employees saw (the admin's, else Dinero's).")
    account_number: int
    account_name: str
    default_tax_code: str | None


class TaxCodeChoice(BaseModel):
    code: str | None = Field(description="The VAT code sent; null: the account's own VAT code.")
    source: Literal["item", "category_default", "account_default"] | None = Field(
        description="Where it came from: the expense line, the category's default, or "
        "(null code) the account's default in Dinero."
    )


class MappingUsed(BaseModel):
    setting: str = Field(description="The settings field the posting used, e.g. deposit_account.")
    from_setting: str = Field(
        description="The field its value came from (the top-up account falls back to the "
        "reimbursement account)."
    )
    value: int | None
    changed_at: datetime | None = Field(
        description="When that setting last changed (null: before history was kept)."
    )
    changed_by: str | None = Field(description="The `sub` of the admin who changed it.")
    change_source: str | None = Field(description="admin, dinero_sync or backfill.")
    change_id: int | None = Field(description="The change in `…/dinero/settings/history`.")


class ChartSyncUsed(BaseModel):
    succeeded_at: datetime | None = Field(description="When the chart used was read from Dinero.")
    accounting_years: list[dict[str, str]] = Field(
        description="The accounting years Dinero had then ({name, from, to})."
    )


class LineExplanation(BaseModel):
    """Why a posted line went where it did, as it was when the request was built."""

    line: int = Field(description="The line's position in what was sent.")
    account_number: int | None = Field(description="The expense account of the line.")
    category: CategoryRef | None = Field(
        description="The category the line named, as it was then; null for an account number."
    )
    tax_code: TaxCodeChoice | None = Field(description="Null for reimbursements and top-ups.")
    mappings: list[MappingUsed] = Field(
        description="The account mappings the posting used, the paying / balancing side first."
    )
    chart_sync: ChartSyncUsed


class PostedLineOut(BaseModel):
    account: AccountRef | None = Field(description="Debited by a positive amount.")
    vat_code: str | None = Field(description="Sent as the line's VAT code (null: account's own).")
    amount_minor: int = Field(description="In DKK øre; Dinero is sent kroner with two decimals.")
    rounding_adjustment_minor: int = Field(
        description="Øre this line received when a foreign amount's settled DKK was spread over "
        "the lines so they add up exactly (0 for DKK items)."
    )
    description: str
    balancing_account: AccountRef | None = Field(
        description="Credited by a positive amount (manual vouchers and ledger items)."
    )
    balancing_vat_code: str | None = None
    explained_by: LineExplanation


class FileOut(BaseModel):
    name: str = Field(
        description="The file's name in Dinero's archive (for an item not stored yet, its id "
        "part is zeros: the id is given when the item is exported)."
    )
    content_type: str
    pages: int
    size_bytes: int | None = Field(
        description="After combining and shrinking the receipts; null for the note of an item "
        "not stored yet (the note shows the item's id, given when it is exported)."
    )
    from_receipts: bool = Field(description="False: a one-page note, as the item has none.")


class PostingOut(BaseModel):
    """Exactly what Dinero would receive for the item."""

    target: Literal["purchase_voucher", "manual_voucher", "ledger_item"] = Field(
        description="purchase_voucher: a draft cash purchase voucher (Bilagsoversigt > Kladder); "
        "manual_voucher: a draft manual voucher reversing a refund (Kladder); ledger_item: a "
        "Kassekladde line, booked right away."
    )
    booked: bool = Field(description="True when it is booked at once (ledger items).")
    voucher_date: date
    amount_minor: int = Field(description="The item's total in DKK øre.")
    paid_from: AccountRef | None = Field(
        description="The voucher's paying account (card / out-of-pocket); for a refund the "
        "account the money goes back into; null for ledger items (see the line)."
    )
    lines: list[PostedLineOut]
    file: FileOut | None = Field(description="The file attached (vouchers only).")
    reference: str | None = Field(
        description="Our reference on the voucher (`ExternalReference`, or the ledger item's "
        "`Id`); null for an item not stored yet: its id is given when it is exported."
    )
    request_body: str = Field(
        description="The JSON body as it would be sent, byte for byte (Dinero's file guid is "
        "null until the file is uploaded; an item not stored yet has a zero id)."
    )


class PreviewItemOut(BaseModel):
    index: int = Field(description="The item's position in the request.")
    external_id: str | None
    type: str | None
    outcome: Literal["would_export", "would_wait", "would_fail", "refused", "exists"] = Field(
        description="would_export: `posting` is what Dinero would get; would_wait / would_fail: "
        "what the export would answer now (`code`, `message`); refused: intake would refuse it "
        "(`errors`); exists: the item was sent before (`item_id`, `status`), nothing new goes."
    )
    code: str | None = Field(
        default=None, description="The same codes the export and the intake use."
    )
    message: str | None = None
    errors: dict[str, str] = Field(default_factory=dict)
    item_id: uuid.UUID | None = None
    status: str | None = None
    posting: PostingOut | None = None


class PreviewOut(BaseModel):
    items: list[PreviewItemOut]
    chart_synced_at: datetime | None = Field(
        description="When the chart the preview checked against was read from Dinero."
    )
    chart_refreshed: bool = Field(
        description="The chart was older than a few minutes and was read again for this preview."
    )

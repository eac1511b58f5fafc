"""Mapping: an export item and the company's books become the exact request Dinero receives.

`plan(item, books)` is the one function that decides what Dinero is sent for an item (the
runner sends its `request`; the posting preview shows it). It is pure: no database, no Dinero;
an `ExportItem` built in memory and a `Books` are all it needs. Call `checks.check` first for
the reasons an item would wait; `plan` raises the same `Wait`/`Fail` for a line it cannot map.

- expense (amount > 0): a cash purchase voucher, one line per expense line (account, VAT code,
  amount incl. VAT), paid from the deposit (card) or out-of-pocket account;
- refund (amount < 0): a manual voucher reversing the expense: each line puts the money back
  into the paying account (no VAT) against the expense account with its VAT code;
- reimbursement / top-up: one ledger item (Kassekladde) with our item id as its id:
  out-of-pocket against reimbursement, or deposit against top-up. A positive amount debits
  `account_number` and credits the balancing account; a negative one runs the other way.

Amounts are øre (ints) in the plan's `lines`, kroner with two decimals in the request (exact,
no rounding happens: øre are whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final, Literal

from app.chart.models import NO_VAT
from app.dinero.models import (
    LedgerItem,
    LedgerItemLine,
    ManualVoucherCreate,
    ManualVoucherLine,
    PurchaseVoucherCreate,
    PurchaseVoucherLine,
)
from app.exports.checks import Books, posting_date, resolve_line
from app.exports.documents import ExpenseLine
from app.exports.models import ExportItem, ItemType

PURCHASE: Final = "purchase_voucher"
MANUAL: Final = "manual_voucher"
LEDGER: Final = "ledger_item"
Target = Literal["purchase_voucher", "manual_voucher", "ledger_item"]
"""What the item becomes in Dinero (stored as the item's `dinero_kind`)."""

Request = PurchaseVoucherCreate | ManualVoucherCreate | LedgerItem


@dataclass(frozen=True)
class PlannedLine:
    """One line as booked: `amount_minor` øre debit `account_number` (negative: credit)."""

    account_number: int | None
    """None only for a ledger item whose mapping was removed after it was first sent."""
    vat_code: str | None
    amount_minor: int
    description: str
    balancing_account_number: int | None = None
    """The other side, when the line carries one (manual vouchers, ledger items)."""
    balancing_vat_code: str | None = None


@dataclass(frozen=True)
class Plan:
    """What Dinero is sent for one item."""

    target: Target
    voucher_date: date
    lines: tuple[PlannedLine, ...]
    balancing_account_number: int | None
    """The voucher's paying account (purchase: its deposit account; refund: each line's
    account); None for ledger items, whose lines carry their own."""
    file_guid: str | None
    request: Request


def plan(item: ExportItem, books: Books) -> Plan:
    """The request for `item` (see the module docstring); raises `Wait`/`Fail` when a line
    cannot be mapped. The file is the one already uploaded (`item.dinero_file_guid`). It is
    dated `checks.posting_date`: the item's own date, or the first open day after the lock
    date (the item's date then stands in each line's text)."""
    day = posting_date(books, item)
    if not item.type.is_expense:
        return _ledger(item, books, day)
    if is_refund(item):
        return _refund(item, books, day)
    return _purchase(item, books, day)


def is_refund(item: ExportItem) -> bool:
    return item.dkk_amount_minor < 0


def money(minor: int) -> Decimal:
    """Øre as Dinero's kroner with two decimals (exact)."""
    return (Decimal(minor) / 100).quantize(Decimal("0.01"))


def reference(item: ExportItem) -> str:
    """The voucher's external reference: our item id."""
    return f"bridge:{item.id}"


def text(item: ExportItem, line: ExpenseLine | None = None, *, day: date | None = None) -> str:
    """A line's description: its own (or the item's), and the employee, within Dinero's 250;
    posted on another `day` than its own date, the item's date ("bilagsdato") leads."""
    name = (item.employee or {}).get("name")
    employee = str(name) if name else None
    own = line.get("description") if line else None
    moved = (
        f"bilagsdato {item.voucher_date.isoformat()}"
        if day not in (None, item.voucher_date)
        else None
    )
    parts = [p for p in (moved, own or item.description, employee) if p]
    return " · ".join(parts)[:250] or item.external_id[:250]


def paid_from(books: Books, item: ExportItem) -> int:
    """The account an expense was paid from: the deposit (card) or out-of-pocket account."""
    name = "deposit_account" if item.type == ItemType.CARD_EXPENSE else "out_of_pocket_account"
    number = books.accounts[name]
    assert number is not None  # checked before (checks.check)
    return number


def _expense_lines(
    item: ExportItem, books: Books, day: date, refund_into: int | None
) -> list[PlannedLine]:
    """One planned line per expense line; a refund's runs back into `refund_into`."""
    planned = []
    for line in item.lines:
        account, tax_code = resolve_line(books, line)
        amount, description = int(line["dkk_amount"]), text(item, line, day=day)
        if refund_into is None:
            planned.append(PlannedLine(account, tax_code, amount, description))
        else:
            planned.append(
                PlannedLine(refund_into, NO_VAT, -amount, description, account, tax_code)
            )
    return planned


def _two_sided(line: PlannedLine) -> dict[str, Any]:
    """A manual voucher's or ledger item's line fields (both sides), without the amount."""
    return {
        "description": line.description,
        "account_number": line.account_number,
        "account_vat_code": line.vat_code,
        "balancing_account_number": line.balancing_account_number,
        "balancing_account_vat_code": line.balancing_vat_code,
    }


def _purchase(item: ExportItem, books: Books, day: date) -> Plan:
    planned = _expense_lines(item, books, day, refund_into=None)
    deposit = paid_from(books, item)
    request = PurchaseVoucherCreate(
        purchase_type="cash",
        voucher_date=day,
        lines=[
            PurchaseVoucherLine(
                amount=money(p.amount_minor),
                account_number=p.account_number,
                description=p.description,
                vat_code=p.vat_code,
            )
            for p in planned
        ],
        deposit_account_number=deposit,
        file_guid=item.dinero_file_guid,
        external_reference=reference(item),
    )
    return Plan(PURCHASE, day, tuple(planned), deposit, item.dinero_file_guid, request)


def _refund(item: ExportItem, books: Books, day: date) -> Plan:
    """A refund reverses the expense: money back into the paying account, VAT reversed."""
    paying = paid_from(books, item)
    planned = _expense_lines(item, books, day, refund_into=paying)
    request = ManualVoucherCreate(
        voucher_date=day,
        lines=[ManualVoucherLine(amount=money(p.amount_minor), **_two_sided(p)) for p in planned],
        file_guid=item.dinero_file_guid,
        external_reference=reference(item),
    )
    return Plan(MANUAL, day, tuple(planned), paying, item.dinero_file_guid, request)


def _ledger(item: ExportItem, books: Books, day: date) -> Plan:
    """Reimbursement: out-of-pocket against the reimbursement bank; top-up: wallet against bank."""
    if item.type == ItemType.REIMBURSEMENT:
        account = books.accounts["out_of_pocket_account"]
        balancing = books.accounts["reimbursement_account"]
    else:
        account, balancing = books.accounts["deposit_account"], books.accounts["top_up_account"]
    line = PlannedLine(
        account, NO_VAT, item.dkk_amount_minor, text(item, day=day), balancing, NO_VAT
    )
    request = LedgerItem(
        id=item.ledger_id,
        voucher_date=day,
        lines=[
            LedgerItemLine(id=item.ledger_id, amount=money(line.amount_minor), **_two_sided(line))
        ],
    )
    return Plan(LEDGER, day, (line,), None, None, request)

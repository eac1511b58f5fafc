"""Checks before an item goes: what every due item needs of the company's books in Dinero.

An item that cannot go yet *waits* (`Wait`) with a reason a person can act on, and goes by itself
on a later pass once that is fixed; one that can never go as sent *fails* (`Fail`). Pure: the
books are read once per pass (app/exports/context.py) into a `Books`, and nothing here touches
the database or Dinero.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.chart.models import Category
from app.exports.models import ExportItem, Step
from app.exports.readiness import EXPORT_NEEDS


class Wait(Exception):
    """The item cannot go yet; a person can fix the reason, then it goes by itself."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Fail(Exception):
    """The item cannot go as sent; it fails with this reason (retry after fixing the source)."""

    def __init__(self, code: str, message: str, dinero_message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.dinero_message = dinero_message


@dataclass(frozen=True)
class ClosedPeriod:
    """An accounting year Dinero refused to book into as closed (app/exports/closed.py)."""

    first_day: date
    last_day: date
    refused_at: datetime
    dinero_message: str | None = None

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True)
class Books:
    """The company's books as an export sees them: mappings, categories, accounts, years."""

    accounts: Mapping[str, int | None]
    """The effective mappings (deposit_account, out_of_pocket_account, …) by name."""
    categories: Mapping[uuid.UUID, Category] = field(default_factory=dict)
    purchase_accounts: frozenset[int] = frozenset()
    deposit_accounts: frozenset[int] = frozenset()
    tax_codes: frozenset[str] = frozenset()
    years: tuple[tuple[date, date], ...] = ()
    synced: bool = False
    closed_through: date | None = None
    """The admin's lock date: nothing dated on or before it goes as dated."""
    move_closed: bool = False
    """The lock date's policy: True posts such items on the day after it, False holds them."""
    closed_years: tuple[ClosedPeriod, ...] = ()
    """Accounting years Dinero refused as closed, as remembered now."""


def check(books: Books, item: ExportItem) -> None:
    """Everything that must hold before Dinero hears of the item (raises Wait or Fail)."""
    if item.step != Step.NEW:
        return  # already under way: finish it with what was decided then
    if not books.synced:
        raise Wait("chart_not_synced", "Waiting for the chart of accounts to sync from Dinero.")
    for name in EXPORT_NEEDS[item.type.value]:
        number = books.accounts[name]
        label = name.replace("_", " ").replace(" account", "")
        if number is None:
            raise Wait("mapping_missing", f"Map {_article(label)} {label} account in the settings.")
        if number not in books.deposit_accounts:
            raise Wait(
                "mapping_unavailable",
                f"The {label} account {number} is hidden in or gone from Dinero: "
                "choose another in the settings.",
            )
    day = posting_date(books, item)
    if not any(start <= day <= end for start, end in books.years):
        raise Wait(
            "accounting_year_missing",
            f"Dinero has no open accounting year for {day.isoformat()}: "
            "create it in Dinero (Indstillinger > Regnskabsår), then sync.",
        )
    closed = closed_wait(books, day)
    if closed is not None:
        raise closed
    if item.type.is_expense:
        for line in item.lines:
            resolve_line(books, line)


def posting_date(books: Books, item: ExportItem) -> date:
    """The date the item is posted on in Dinero: its own, or, when it falls on or before the
    lock date and the policy moves such items, the first day after the lock date."""
    closed = books.closed_through
    if books.move_closed and closed is not None and item.voucher_date <= closed:
        return closed + timedelta(days=1)
    return item.voucher_date


def closed_for(books: Books, item: ExportItem) -> Wait | None:
    """Why `item` may not go to Dinero now, if its posting date is in a closed period."""
    return closed_wait(books, posting_date(books, item))


def closed_wait(books: Books, day: date) -> Wait | None:
    """Why an item dated `day` may not go to Dinero now, if the period is closed."""
    if books.closed_through is not None and day <= books.closed_through:
        return Wait(
            "period_closed",
            f"The books are closed through {books.closed_through.isoformat()} (the lock date in "
            f"the settings), and this is dated {day.isoformat()}: move the lock date back, "
            "clear it (books_closed_through), or have such items posted on the first open day "
            "(closed_period_policy) to export it.",
        )
    for year in books.closed_years:
        if year.contains(day):
            said = f" (Dinero: {year.dinero_message})" if year.dinero_message else ""
            return Wait(
                "accounting_year_closed",
                f"Dinero refused to book into the accounting year {year.first_day.isoformat()} "
                f"to {year.last_day.isoformat()} as closed{said}, so nothing dated in it is "
                "sent for now. Reopen the year in Dinero, then retry the item.",
            )
    return None


def _article(label: str) -> str:
    return "an" if label[:1] in "aeiou" else "a"


def resolve_line(books: Books, line: Mapping[str, Any]) -> tuple[int, str | None]:
    """The account number and VAT code of an expense line (raises Wait or Fail)."""
    tax_code: str | None = line.get("tax_code")
    if line.get("category_id"):
        category = books.categories.get(uuid.UUID(str(line["category_id"])))
        if category is None:
            raise Fail("category_unknown", "The expense's category does not exist.")
        if not category.active:
            raise Wait(
                "category_inactive",
                f"Category {category.name or category.account_name} "
                f"(account {category.account_number}) is hidden in or gone from Dinero: "
                "show the account in Dinero or recategorize the expense.",
            )
        account = category.account_number
        tax_code = tax_code or category.tax_code
    else:
        account = int(line["account_number"])
        if account not in books.purchase_accounts:
            raise Wait(
                "account_unavailable",
                f"Account {account} is not an expense account in Dinero: "
                "use an account between 2000 and 9399 that is not hidden.",
            )
    if tax_code is not None and tax_code not in books.tax_codes:
        raise Wait(
            "tax_code_unknown",
            f"Tax code {tax_code} is not a VAT type in Dinero: use another or add it in Dinero.",
        )
    return account, tax_code

"""Live pre-flight: before the first request for an item, confirm it against Dinero as it is now.

Dinero may revoke an integration that sends many bad requests, so what would earn a 400 waits
here instead, with a reason a person can act on:

- the chart and accounting years are no older than `CHART_FRESH_FOR`; older ones are read again
  (one chart sync, five requests through the organization's pacing) before anything is sent;
- each line's account is present in Dinero and not hidden (`account_unavailable`);
- each line's VAT code can be used on its account: an expense account takes purchase VAT types,
  never a sales one (`tax_code_not_for_account`);
- the date is inside one of the organization's accounting years (`checks.check`).

The runner (its checks step) and the posting preview both call `confirm` after `checks.check`,
with books refreshed by `fresh_books`: one set of rules for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from app.chart.models import ChartSync
from app.chart.sync import sync_chart
from app.exports.checks import Books, Wait, resolve_line
from app.exports.context import load_books
from app.exports.models import ExportItem, Step
from app.services import Services

CHART_FRESH_FOR: Final = timedelta(minutes=5)
"""How old the synced chart may be when an item's first request goes out."""

SALES_VAT_CODES: Final = frozenset({"KUNS", "OBPS"})
"""Sales VAT types without the `U` (udgående) prefix every other Danish sales code has."""


def is_sales_vat(code: str) -> bool:
    """A sales (output) VAT type: Dinero refuses it on an expense (purchase) line."""
    upper = code.upper()
    return upper.startswith("U") or upper in SALES_VAT_CODES


@dataclass(frozen=True)
class Freshness:
    """The books to check against, and when Dinero last confirmed them."""

    books: Books
    synced_at: datetime | None
    refreshed: bool
    """True when this call read the chart from Dinero again."""
    problem: Wait | None = None
    """Set when the chart was too old and could not be read again: new items wait."""


async def synced_at(services: Services, company_id: str) -> datetime | None:
    async with services.sessionmaker() as session:
        state = await session.get(ChartSync, company_id)
        return None if state is None else state.succeeded_at


async def fresh_books(
    services: Services, company_id: str, books: Books, *, now: datetime | None = None
) -> Freshness:
    """`books`, or the books read again after a chart sync when they are older than allowed."""
    moment = now or datetime.now(UTC)
    last = await synced_at(services, company_id)
    if last is not None and moment - last <= CHART_FRESH_FOR:
        return Freshness(books=books, synced_at=last, refreshed=False)
    outcome = await sync_chart(services, company_id)
    async with services.sessionmaker() as session:
        reloaded = await load_books(session, company_id)
    after = await synced_at(services, company_id)
    if outcome.status == "succeeded" or (after is not None and moment - after <= CHART_FRESH_FOR):
        return Freshness(books=reloaded, synced_at=after, refreshed=True)
    return Freshness(
        books=reloaded,
        synced_at=after,
        refreshed=False,
        problem=Wait(
            "chart_not_confirmed",
            "The chart of accounts could not be read from Dinero just now to confirm the "
            "accounts, VAT codes and accounting year; the export goes once it can "
            "(see the chart sync's state for why).",
        ),
    )


def confirm(books: Books, item: ExportItem) -> None:
    """The live checks of an item not yet sent (raises `Wait`); call after `checks.check`."""
    if item.step != Step.NEW or not item.type.is_expense:
        return
    for line in item.lines:
        account, tax_code = resolve_line(books, line)
        if account not in books.purchase_accounts:
            raise Wait(
                "account_unavailable",
                f"Account {account} is hidden in or gone from Dinero's chart of accounts: "
                "show it again in Dinero or recategorize the expense.",
            )
        if tax_code is not None and is_sales_vat(tax_code):
            raise Wait(
                "tax_code_not_for_account",
                f"Tax code {tax_code} is a sales VAT type, which Dinero refuses on the expense "
                f"account {account}: use a purchase VAT code (such as I25) or none, on the "
                "expense or as the category's default.",
            )

"""Booking (Bogføring): accounting years, voucher numbers, VAT splits and entries.

Every booking writes balanced entries (posteringer): positive amounts debit, negative credit.
A purchase line of 125.00 with I25 paid from the bank gives expense +100.00, købsmoms +25.00,
bank -125.00. Reverse-charge purchases (IEUV, IEUY, IVV, IVY, OBPK) post 25 % købsmoms and the
same amount as the matching foreign-VAT liability, which nets to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from dinero_sandbox.chart import CREDITORS_ACCOUNT, VatTypeSpec
from dinero_sandbox.errors import DineroError, validation_error
from dinero_sandbox.state import Account, AccountingYear, Entry, Ids, OrgBooks
from dinero_sandbox.wire import TWO_PLACES

ZERO = Decimal(0)


def round2(value: Decimal) -> Decimal:
    """Round half up to øre."""
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# Accounting years and voucher numbers


def year_for(books: OrgBooks, day: date, *, create: bool = True) -> AccountingYear:
    """The accounting year `day` falls in; the year after the newest one is created on demand
    (Dinero creates a year by booking into it), anything else is refused."""
    for year in books.years.values():
        if year.contains(day):
            if year.locked:
                raise validation_error(
                    {"VoucherDate": f"The accounting year {year.year} is closed"},
                    "Accounting year closed",
                )
            return year
    newest = max(books.years) if books.years else None
    if create and newest is not None and day.year == newest + 1:
        year = AccountingYear(day.year)
        books.years[year.year] = year
        return year
    raise validation_error(
        {"VoucherDate": f"{day.isoformat()} is not within an accounting year of the organization"},
        "No accounting year",
    )


def take_voucher_number(books: OrgBooks, year: AccountingYear, requested: int | None) -> int:
    """The requested voucher number if free, else the next one of the year (Bilagsnummer)."""
    taken = books.voucher_numbers.setdefault(year.year, set())
    if requested is not None:
        if requested <= 0:
            raise validation_error({"Number": "The voucher number must be positive"})
        if requested in taken:
            raise validation_error(
                {"Number": f"Voucher number {requested} is already used in {year.year}"},
                "Voucher number taken",
            )
        taken.add(requested)
        return requested
    number = max(taken, default=0) + 1
    taken.add(number)
    return number


def check_voucher_number_free(books: OrgBooks, year: AccountingYear, number: int) -> None:
    """Refuse a voucher number already used in the year."""
    if number in books.voucher_numbers.get(year.year, set()):
        raise validation_error(
            {"Number": f"Voucher number {number} is already used in {year.year}"},
            "Voucher number taken",
        )


def take_credit_note_number(books: OrgBooks, year: AccountingYear) -> int:
    taken = books.credit_note_numbers.setdefault(year.year, set())
    number = max(taken, default=0) + 1
    taken.add(number)
    return number


# --------------------------------------------------------------------------------------------
# VAT


@dataclass(frozen=True)
class VatSplit:
    """An amount split by its VAT type."""

    excl: Decimal
    vat: Decimal
    reverse: Decimal  # self-assessed VAT of a reverse-charge purchase (købsmoms = salgsmoms)

    @property
    def incl(self) -> Decimal:
        return self.excl + self.vat


def split_incl(amount: Decimal, vat: VatTypeSpec | None) -> VatSplit:
    """Split an amount incl. VAT: REP/HREP deduct only their share, the rest stays a cost."""
    if vat is None:
        return VatSplit(amount, ZERO, ZERO)
    if vat.rate == 0:
        return VatSplit(amount, ZERO, round2(amount * vat.reverse_rate))
    base = amount / (1 + vat.gross_rate)
    vat_amount = round2(base * vat.rate)
    return VatSplit(amount - vat_amount, vat_amount, ZERO)


def split_excl(amount: Decimal, vat: VatTypeSpec | None) -> VatSplit:
    """Split an amount excl. VAT (sales lines): VAT is added on top."""
    if vat is None:
        return VatSplit(amount, ZERO, ZERO)
    if vat.rate == 0:
        return VatSplit(amount, ZERO, round2(amount * vat.reverse_rate))
    return VatSplit(amount, round2(amount * vat.rate), ZERO)


def resolve_vat(books: OrgBooks, code: str | None, account: Account | None) -> VatTypeSpec | None:
    """The VAT type of a line: `None` → the account's default, `"none"` → no VAT."""
    effective = account.vat_code if code is None and account is not None else code
    if effective is None or effective.lower() == "none":
        return None
    return books.vat_types.get(effective)


def effective_vat_code(books: OrgBooks, code: str | None, account: Account | None) -> str:
    vat = resolve_vat(books, code, account)
    return vat.code if vat else "none"


def check_vat_code(books: OrgBooks, code: str | None, field: str, errors: dict[str, str]) -> None:
    """A VAT code must be null, "none" or one of the organization's VAT types."""
    if code is None or code.lower() == "none":
        return
    if code not in books.vat_types:
        errors[field] = f"VAT code '{code}' does not exist"


class TwoAccountLine(Protocol):
    """A line booked on an account and/or a balancing account (ledger and manual lines)."""

    @property
    def account_number(self) -> int | None: ...
    @property
    def account_vat_code(self) -> str | None: ...
    @property
    def balancing_account_number(self) -> int | None: ...
    @property
    def balancing_account_vat_code(self) -> str | None: ...


def check_line_accounts(
    books: OrgBooks, line: TwoAccountLine, where: str, errors: dict[str, str]
) -> None:
    """Both accounts of a line, where given, must exist and not be hidden; both VAT codes must
    be known (the error keys are `where` + the field)."""
    for field, number in (
        ("AccountNumber", line.account_number),
        ("BalancingAccountNumber", line.balancing_account_number),
    ):
        account = books.account(number)
        if number is not None and account is None:
            errors[f"{where}.{field}"] = f"Account {number} does not exist"
        elif account is not None and account.hidden:
            errors[f"{where}.{field}"] = f"Account {number} is hidden"
    check_vat_code(books, line.account_vat_code, f"{where}.AccountVatCode", errors)
    check_vat_code(
        books, line.balancing_account_vat_code, f"{where}.BalancingAccountVatCode", errors
    )


# --------------------------------------------------------------------------------------------
# Postings and entries


@dataclass(frozen=True)
class Posting:
    """One side of a booking before it becomes an entry."""

    account_number: int
    amount: Decimal
    description: str | None = None
    vat: VatTypeSpec | None = None
    contact_guid: str | None = None


def side_postings(
    account_number: int,
    amount: Decimal,
    vat: VatTypeSpec | None,
    description: str | None,
    *,
    incl_vat: bool = True,
    contact_guid: str | None = None,
) -> list[Posting]:
    """Postings for one account side of a line, VAT split off onto the VAT accounts."""
    split = split_incl(amount, vat) if incl_vat else split_excl(amount, vat)
    postings = [Posting(account_number, split.excl, description, vat, contact_guid)]
    if vat is not None and split.vat != 0 and vat.vat_account is not None:
        postings.append(Posting(vat.vat_account, split.vat, description))
    if vat is not None and split.reverse != 0:
        if vat.vat_account is not None:
            postings.append(Posting(vat.vat_account, split.reverse, description))
        if vat.reverse_account is not None:
            postings.append(Posting(vat.reverse_account, -split.reverse, description))
    return postings


def side_total(postings: list[Posting]) -> Decimal:
    return sum((p.amount for p in postings), ZERO)


def write_entries(
    books: OrgBooks,
    ids: Ids,
    *,
    postings: list[Posting],
    entry_date: date,
    voucher_number: int | None,
    voucher_guid: str,
    voucher_type: str,
    file_guid: str | None,
    now: datetime,
    contact_guid: str | None = None,
) -> list[Entry]:
    """Turn balanced postings into entries (zero postings are left out)."""
    total = side_total(postings)
    if total != 0:
        raise DineroError(
            400,
            42,
            "The voucher does not balance",
            {"Lines": f"Debit and credit differ by {total}"},
        )
    entries: list[Entry] = []
    for posting in postings:
        if posting.amount == 0:
            continue
        entry = Entry(
            guid=ids.guid(),
            account_number=posting.account_number,
            account_name=books.account_name(posting.account_number),
            entry_date=entry_date,
            amount=posting.amount,
            voucher_number=voucher_number,
            voucher_guid=voucher_guid,
            voucher_type=voucher_type,
            created_at=now,
            description=posting.description,
            file_guid=file_guid,
            vat_type=posting.vat.name if posting.vat else None,
            vat_code=posting.vat.code if posting.vat else None,
            contact_guid=posting.contact_guid or contact_guid,
        )
        entries.append(entry)
    books.entries.extend(entries)
    return entries


def reverse_entries(
    books: OrgBooks, ids: Ids, voucher_guid: str, now: datetime, description: str
) -> list[Entry]:
    """Offset every entry of a voucher (Danish law forbids removing booked vouchers)."""
    originals = [e for e in books.entries if e.voucher_guid == voucher_guid and e.type == "Normal"]
    reversals = [
        Entry(
            guid=ids.guid(),
            account_number=e.account_number,
            account_name=e.account_name,
            entry_date=e.entry_date,
            amount=-e.amount,
            voucher_number=e.voucher_number,
            voucher_guid=e.voucher_guid,
            voucher_type=e.voucher_type,
            created_at=now,
            description=description,
            file_guid=e.file_guid,
            vat_type=e.vat_type,
            vat_code=e.vat_code,
            contact_guid=e.contact_guid,
        )
        for e in originals
    ]
    books.entries.extend(reversals)
    return reversals


def counter_account(purchase_type: str, deposit_account: int | None) -> int:
    """Where a purchase is paid from: the deposit account (cash) or the creditors (credit)."""
    if purchase_type == "cash" and deposit_account is not None:
        return deposit_account
    return CREDITORS_ACCOUNT


@dataclass
class Writer:
    """Who is writing to which books, and when (one request or one accountant action)."""

    books: OrgBooks
    ids: Ids
    now: datetime
    username: str
    by_type: str = "Api"

    @property
    def today(self) -> date:
        return self.now.date()


# Fixed day rates (DKK per 1 unit) for credit purchases in another currency.
EXCHANGE_RATES: dict[str, Decimal] = {
    "DKK": Decimal(1),
    "EUR": Decimal("7.4600"),
    "USD": Decimal("6.9000"),
    "GBP": Decimal("8.6000"),
    "SEK": Decimal("0.6500"),
    "NOK": Decimal("0.6300"),
}


def to_dkk(postings: list[Posting], currency: str) -> list[Posting]:
    """Convert postings at the day rate; the rounding residue goes to the last posting."""
    rate = EXCHANGE_RATES[currency]
    if rate == 1:
        return postings
    converted = [
        Posting(p.account_number, round2(p.amount * rate), p.description, p.vat, p.contact_guid)
        for p in postings
    ]
    residue = side_total(converted)
    if residue and converted:
        last = converted[-1]
        converted[-1] = Posting(
            last.account_number,
            last.amount - residue,
            last.description,
            last.vat,
            last.contact_guid,
        )
    return converted

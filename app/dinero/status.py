"""Dinero's status words, typed: the DTOs parse them into these enums, so nothing outside
`app/dinero/` compares Dinero's status strings (ask the DTO's `is_booked`/`is_draft` instead)."""

from __future__ import annotations

from enum import StrEnum


class _Lenient(StrEnum):
    """Matched case-insensitively; a word Dinero adds later reads as UNKNOWN, not as an error."""

    @classmethod
    def _missing_(cls, value: object) -> _Lenient | None:
        if not isinstance(value, str):
            return None
        lowered = value.lower()
        for member in cls:
            if member.value.lower() == lowered:
                return member
        return cls("Unknown")


class VoucherStatus(_Lenient):
    """A voucher's status: purchase vouchers (cash: Draft, Paid, Editing; credit: also Booked,
    Overdue, Overpaid), purchase credit notes (the same) and manual vouchers (Draft, Editing,
    Booked)."""

    DRAFT = "Draft"
    EDITING = "Editing"
    """A booked voucher reopened (it keeps its number), or, without a number, not booked yet."""
    BOOKED = "Booked"
    PAID = "Paid"
    OVERDUE = "Overdue"
    OVERPAID = "Overpaid"
    UNKNOWN = "Unknown"


class LedgerStatus(_Lenient):
    """A ledger item's ("Kassekladde") booking progress."""

    DRAFT = "Draft"
    PENDING_BOOKING = "PendingBooking"
    """Booking asked for; Dinero books asynchronously."""
    BOOKED = "Booked"
    UNKNOWN = "Unknown"


def voucher_is_booked(status: VoucherStatus | None, voucher_number: int | None) -> bool:
    """Booked in the books: any status past Draft, except Editing without a voucher number.

    Cash purchases read Paid once booked; "Editing" is a booked voucher reopened (it has its
    number already); credit purchases read Booked, Overdue, Overpaid or Paid."""
    if status is None or status is VoucherStatus.DRAFT:
        return False
    return status is not VoucherStatus.EDITING or voucher_number is not None


__all__ = ["LedgerStatus", "VoucherStatus", "voucher_is_booked"]

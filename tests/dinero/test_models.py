"""The snake_case models read Dinero's PascalCase (or echoed) names and write PascalCase."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

import pytest
from pydantic import ValidationError

from app.dinero import (
    AccountingYear,
    EntryAccount,
    LedgerItem,
    LedgerItemLine,
    LedgerItemStatus,
    LedgerStatus,
    ManualVoucher,
    Organization,
    Page,
    PurchaseVoucher,
    PurchaseVoucherLine,
    RawRecord,
    VoucherStatus,
)
from app.dinero.wire import dumps
from tests.dinero.examples import example


def test_v1_and_v1_1_organizations_read_into_one_type() -> None:
    v1 = Organization.model_validate(example("OrganizationReadModel", IsPro=True))
    v11 = Organization.model_validate(
        dict(
            example("OrganizationReadModelV2"),
            Subscription=example("SubscriptionReadModel", HasPro=True, HasPayingPro=False),
        )
    )
    assert (v1.id, v1.is_pro, v1.is_paying_pro) == (42, True, True)
    assert (v11.id, v11.is_pro, v11.is_paying_pro) == (42, True, False)
    assert v11.subscription is not None
    assert v11.role_key == "text"


def test_missing_pro_flag_means_no_pro() -> None:
    assert Organization.model_validate({"Id": 1, "IsPro": None}).is_pro is False
    assert Organization.model_validate({"id": 1, "name": "echoed lower-case"}).is_pro is False


def test_names_are_matched_case_insensitively() -> None:
    # Dinero echoes `fields=` names the way they were asked for (e.g. `accountNumber`).
    account = EntryAccount.model_validate(
        {"accountNumber": 2000, "name": "Køb", "ISHIDDEN": True, "vatCode": "I25"}
    )
    assert (account.account_number, account.name, account.is_hidden) == (2000, "Køb", True)
    assert account.vat_code == "I25"
    year = AccountingYear.model_validate({"name": "2024", "salarySumTaxStateEnum": "Paid"})
    assert year.salary_sum_tax_state == "Paid"


def test_null_collection_is_an_empty_page() -> None:
    page = Page[RawRecord].model_validate(
        {
            "Collection": None,
            "Pagination": {
                "MaxPageSizeAllowed": 1000,
                "PageSize": 100,
                "Result": 0,
                "ResultWithoutFilter": 0,
                "Page": 0,
            },
        }
    )
    assert page.collection == []


def test_write_models_forbid_unknown_arguments() -> None:
    with pytest.raises(ValidationError):
        PurchaseVoucherLine(amount=Decimal("1"), amount_incl_vat=Decimal("1"))  # type: ignore[call-arg]


def test_money_accepts_decimal_int_and_exact_strings() -> None:
    assert PurchaseVoucherLine(amount=Decimal("245")).amount == Decimal("245")
    assert PurchaseVoucherLine(amount=245).amount == Decimal("245")
    assert PurchaseVoucherLine(amount="245.50").amount == Decimal("245.50")
    with pytest.raises(ValidationError):
        PurchaseVoucherLine(amount=Decimal("Infinity"))


def test_ledger_item_wire_shape() -> None:
    item = LedgerItem(
        id=UUID(int=7),
        voucher_date=date(2026, 1, 2),
        lines=[
            LedgerItemLine(amount=Decimal("99.9"), account_number=1000, account_vat_code="none")
        ],
    )
    assert dumps(item.to_wire()) == (
        b'{"Id":"00000000-0000-0000-0000-000000000007","VoucherDate":"2026-01-02",'
        b'"Lines":[{"Amount":99.90,"AccountNumber":1000,"AccountVatCode":"none"}]}'
    )
    with pytest.raises(ValidationError):
        LedgerItem(id=UUID(int=7), voucher_date=date(2026, 1, 2), lines=[])


@pytest.mark.parametrize(
    ("status", "number", "booked", "draft", "typed"),
    [
        ("Draft", None, False, True, VoucherStatus.DRAFT),
        ("Editing", None, False, False, VoucherStatus.EDITING),  # not booked yet, being edited
        ("Editing", 12, True, False, VoucherStatus.EDITING),  # reopened: keeps its number
        ("Paid", 12, True, False, VoucherStatus.PAID),  # cash purchases read Paid once booked
        ("Booked", 12, True, False, VoucherStatus.BOOKED),
        ("overdue", 12, True, False, VoucherStatus.OVERDUE),  # Dinero's casing varies
        ("OverPaid", 12, True, False, VoucherStatus.OVERPAID),  # (OverPaid in its filters)
        ("SomethingNew", 12, True, False, VoucherStatus.UNKNOWN),  # a later word: past Draft
        (None, None, False, False, None),
    ],
)
def test_a_purchase_voucher_status_is_typed_and_says_whether_it_is_booked(
    status: str | None, number: int | None, booked: bool, draft: bool, typed: VoucherStatus | None
) -> None:
    voucher = PurchaseVoucher.model_validate(
        {"Guid": str(UUID(int=1)), "Status": status, "VoucherNumber": number}
    )
    assert voucher.status is typed
    assert (voucher.is_booked, voucher.is_draft) == (booked, draft)


def test_manual_voucher_and_ledger_statuses_are_typed() -> None:
    manual = ManualVoucher.model_validate({"Guid": str(UUID(int=1)), "Status": "Editing"})
    assert (manual.status, manual.is_draft, manual.is_booked) == (
        VoucherStatus.EDITING,
        True,
        False,
    )
    pending = LedgerItemStatus.model_validate({"Id": str(UUID(int=2)), "Status": "PendingBooking"})
    assert pending.status is LedgerStatus.PENDING_BOOKING
    assert (pending.is_pending_booking, pending.is_booked) == (True, False)
    odd = LedgerItemStatus.model_validate({"Id": str(UUID(int=2)), "Status": "Archived"})
    assert odd.status is LedgerStatus.UNKNOWN
    assert (odd.is_pending_booking, odd.is_booked) == (False, False)

"""What reversing and account creation need of Dinero, through the client, against the sandbox.

Every exchange goes through the contract-checking transport (tests/sandbox/conftest.py), so the
client's requests and the sandbox's answers both match Dinero's OpenAPI subset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
import pytest
from dinero_sandbox import Sandbox

from app.dinero import (
    DineroClient,
    DineroNotFound,
    DineroValidationError,
    LedgerItem,
    LedgerItemLine,
    NoopPacer,
    PurchaseVoucherCreate,
    PurchaseVoucherLine,
    StaticTokenProvider,
)
from app.dinero.models import (
    DepositAccountCreate,
    ManualVoucherCreate,
    ManualVoucherLine,
    PurchaseCreditNoteCreate,
)
from tests.contract import ContractTransport
from tests.sandbox.conftest import BASE_URL, by_account

ORG = 100001
CARD = 55030


@pytest.fixture
async def dinero(transport: ContractTransport, token: str) -> AsyncIterator[DineroClient]:
    async with httpx.AsyncClient(transport=transport) as http:
        yield DineroClient(http, BASE_URL, ORG, StaticTokenProvider(token), NoopPacer())


async def paid_purchase(dinero: DineroClient, sandbox: Sandbox) -> UUID:
    voucher = await dinero.create_purchase_voucher(
        PurchaseVoucherCreate(
            purchase_type="cash",
            voucher_date=date(2026, 11, 3),
            deposit_account_number=CARD,
            lines=[
                PurchaseVoucherLine(amount=Decimal("125.00"), account_number=5000, vat_code="I25")
            ],
        )
    )
    sandbox.approve_purchase_voucher(ORG, str(voucher.guid))
    return voucher.guid


async def test_a_deposit_account_is_created_and_listed(
    dinero: DineroClient, sandbox: Sandbox
) -> None:
    await dinero.create_deposit_account(DepositAccountCreate(number=55500, name="Pleo"))

    listed = {a.account_number: a for a in await dinero.deposit_accounts()}
    assert listed[55500].name == "Pleo"
    with pytest.raises(DineroValidationError) as taken:
        await dinero.create_deposit_account(DepositAccountCreate(number=55500, name="Again"))
    assert "Number" in taken.value.validation_errors
    assert sandbox.org(ORG).accounts[55500].name == "Pleo"


async def test_a_reversing_manual_voucher_offsets_a_paid_cash_purchase(
    dinero: DineroClient, sandbox: Sandbox
) -> None:
    original = await paid_purchase(dinero, sandbox)
    reversing = await dinero.create_manual_voucher(
        ManualVoucherCreate(
            voucher_date=date(2026, 11, 20),
            external_reference="bridge-reversal:1",
            lines=[
                ManualVoucherLine(
                    amount=Decimal("125.00"),
                    account_number=CARD,
                    account_vat_code="none",
                    balancing_account_number=5000,
                    balancing_account_vat_code="I25",
                )
            ],
        )
    )
    booked = await dinero.book_manual_voucher(reversing.guid, reversing.timestamp or "")

    assert booked.status == "Booked"
    assert booked.external_reference == "bridge-reversal:1"
    together = by_account(sandbox, ORG, original)
    for account, amount in by_account(sandbox, ORG, booked.guid).items():
        together[account] = together.get(account, Decimal(0)) + amount
    assert set(together.values()) == {Decimal(0)}  # expense, VAT and card all back to nothing


async def test_a_draft_is_deleted_and_a_booked_voucher_is_reversed_by_delete(
    dinero: DineroClient, sandbox: Sandbox
) -> None:
    draft = await dinero.create_purchase_voucher(
        PurchaseVoucherCreate(
            purchase_type="cash",
            deposit_account_number=CARD,
            lines=[PurchaseVoucherLine(amount=Decimal("50.00"), account_number=5000)],
        )
    )
    await dinero.delete_purchase_voucher(draft.guid, draft.timestamp)
    with pytest.raises(DineroNotFound):
        await dinero.get_purchase_voucher(draft.guid)
    assert by_account(sandbox, ORG, draft.guid) == {}


async def test_a_purchase_credit_note_uses_our_guid_and_needs_a_contact_to_be_booked(
    dinero: DineroClient, sandbox: Sandbox
) -> None:
    original = await paid_purchase(dinero, sandbox)
    ours = uuid4()
    note = PurchaseCreditNoteCreate(
        guid=ours,
        credit_note_for=original,
        date=date(2026, 11, 20),
        lines=[PurchaseVoucherLine(amount=Decimal("125.00"), account_number=5000, vat_code="I25")],
    )
    created = await dinero.create_purchase_credit_note(note)
    assert created.guid == ours
    read = await dinero.get_purchase_credit_note(ours)  # found by our guid after a lost answer
    assert (read.status, read.credit_note_for) == ("Draft", original)

    with pytest.raises(DineroValidationError) as refused:
        await dinero.book_purchase_credit_note(ours, read.timestamp or "")
    assert "ContactGuid" in refused.value.validation_errors
    with pytest.raises(DineroNotFound):
        await dinero.get_purchase_credit_note(uuid4())


async def test_a_reversing_ledger_item_is_booked_with_our_id(
    dinero: DineroClient, sandbox: Sandbox
) -> None:
    ours = uuid4()
    line = LedgerItemLine(
        id=ours,
        amount=Decimal("-500.00"),
        account_number=55080,
        account_vat_code="none",
        balancing_account_number=55000,
        balancing_account_vat_code="none",
    )
    refs = await dinero.create_ledger_items(
        [LedgerItem(id=ours, voucher_date=date(2026, 11, 20), lines=[line])]
    )
    await dinero.book_ledger_items(refs)
    sandbox.complete_ledger_bookings(ORG)

    [status] = await dinero.ledger_item_status([ours])
    assert status.is_booked
    assert by_account(sandbox, ORG, ours) == {55080: Decimal("-500.00"), 55000: Decimal("500.00")}

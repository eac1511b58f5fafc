"""The export item's lifecycle: the table of allowed status transitions is complete and
enforced, every status change in the code goes through `transition()`, and the mapping step
(what Dinero is sent) is a pure function."""

from __future__ import annotations

import ast
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.chart.models import Category
from app.dinero.models import LedgerItem, ManualVoucherCreate, PurchaseVoucherCreate
from app.exports.checks import Books, Wait
from app.exports.mapping import LEDGER, MANUAL, PURCHASE, PlannedLine, plan
from app.exports.models import ExportItem, ItemStatus, ItemType
from app.exports.service import TRANSITIONS, Row, TransitionRefused, _transitions, transition
from tests.conftest import bearer
from tests.exports.intake_support import card, items_of
from tests.stored import new_item

APP = Path(__file__).resolve().parents[2] / "app"


def test_every_status_has_a_row_and_every_move_names_a_status() -> None:
    assert set(TRANSITIONS) == set(ItemStatus)
    for targets in TRANSITIONS.values():
        assert targets <= set(ItemStatus)
    # Booked books are never exported again by themselves (only a reversal undoes them).
    assert TRANSITIONS[ItemStatus.BOOKED].isdisjoint(
        {ItemStatus.QUEUED, ItemStatus.EXPORTING, ItemStatus.FAILED}
    )


def test_a_status_added_in_one_line_is_reached_from_the_statuses_it_names() -> None:
    rows = {
        ItemStatus.AWAITING_APPROVAL: Row(to=frozenset({ItemStatus.BOOKED})),
        ItemStatus.BOOKED: Row(),
        ItemStatus.DELETED_IN_DINERO: Row(
            to=frozenset({ItemStatus.QUEUED}),
            reached_from=frozenset({ItemStatus.AWAITING_APPROVAL, ItemStatus.BOOKED}),
        ),
        ItemStatus.QUEUED: Row(),
    }
    assert _transitions(rows) == {
        ItemStatus.AWAITING_APPROVAL: {ItemStatus.BOOKED, ItemStatus.DELETED_IN_DINERO},
        ItemStatus.BOOKED: {ItemStatus.DELETED_IN_DINERO},
        ItemStatus.DELETED_IN_DINERO: {ItemStatus.QUEUED},
        ItemStatus.QUEUED: set(),
    }


def _status_members(tree: ast.AST) -> set[str]:
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ItemStatus"
    }


def test_every_status_the_code_reaches_is_in_the_table_and_set_only_by_transition() -> None:
    reached: set[str] = set()
    by_hand: list[str] = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        reached |= _status_members(tree)
        if path.name == "service.py" and path.parent.name == "exports":
            continue
        for node in ast.walk(tree):
            # update(ExportItem).values(status=...) written outside the lifecycle
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values"
                and any(
                    k.arg == "status"
                    and (_status_members(k.value) or "ExportItem" in ast.unparse(node.func.value))
                    for k in node.keywords
                )
            ):
                by_hand.append(f"{path.relative_to(APP)}:{node.lineno}")
            # item.status = ItemStatus.X
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Attribute) and t.attr == "status" for t in node.targets)
                and _status_members(node.value)
            ):
                by_hand.append(f"{path.relative_to(APP)}:{node.lineno}")
    assert reached, "the scan found no ItemStatus at all"
    assert {m.name for m in TRANSITIONS} >= reached
    assert by_hand == []


async def test_the_database_knows_exactly_the_statuses_of_the_table(db: AsyncSession) -> None:
    labels = set(
        (
            await db.execute(
                text(
                    "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                    "WHERE t.typname = 'export_item_status'"
                )
            )
        ).scalars()
    )
    assert labels == {status.value for status in TRANSITIONS}


async def test_a_forbidden_transition_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await client.post(
        "/v1/companies/acme/exports", json={"items": [card("exp_life")]}, headers=bearer("acme")
    )
    assert response.status_code == 202, response.text
    (item,) = await items_of(db, "acme")
    await db.execute(
        update(ExportItem).where(ExportItem.id == item.id).values(status=ItemStatus.BOOKED)
    )

    with pytest.raises(TransitionRefused, match="booked -> queued"):
        await transition(db, item.id, from_=ItemStatus.BOOKED, to=ItemStatus.QUEUED)
    # Allowed in the table, but the item is not where the caller thought: nothing moves.
    assert not await transition(db, item.id, from_=ItemStatus.FAILED, to=ItemStatus.QUEUED)
    status = await db.scalar(select(ExportItem.status).where(ExportItem.id == item.id))
    assert status == ItemStatus.BOOKED

    assert (
        await transition(db, item.id, from_=ItemStatus.AWAITING_APPROVAL, to=ItemStatus.BOOKED)
        is False
    )


# --- mapping: pure, no database ---------------------------------------------------------------

CATEGORY = uuid.uuid4()
BOOKS = Books(
    accounts={
        "deposit_account": 55000,
        "out_of_pocket_account": 55100,
        "reimbursement_account": 58000,
        "top_up_account": 58100,
    },
    categories={
        CATEGORY: Category(
            id=CATEGORY,
            account_number=2800,
            account_name="Rejser",
            name="Travel",
            tax_code="I25",
            active=True,
        )
    },
    purchase_accounts=frozenset({2800, 4000}),
    deposit_accounts=frozenset({55000, 55100, 58000, 58100}),
    tax_codes=frozenset({"I25", "none"}),
    years=((date(2026, 1, 1), date(2026, 12, 31)),),
    synced=True,
)


def _item(kind: ItemType, amount: int, lines: list[dict[str, Any]] | None = None) -> ExportItem:
    return new_item(
        amount,
        id=uuid.UUID(int=7),
        external_id="exp_42",
        type=kind,
        voucher_date=date(2026, 3, 4),
        description="Taxi",
        lines=lines or [],
        employee={"name": "Ida"},
        dinero_file_guid=None,
    )


def test_an_expense_maps_to_one_cash_purchase_voucher_line_per_expense_line() -> None:
    item = _item(
        ItemType.CARD_EXPENSE,
        12550,
        [
            {"category_id": str(CATEGORY), "dkk_amount": 10000},
            {"account_number": 4000, "tax_code": "none", "dkk_amount": 2550, "description": "Tip"},
        ],
    )

    planned = plan(item, BOOKS)

    assert planned.target == PURCHASE
    assert planned.balancing_account_number == 55000
    assert planned.lines == (
        PlannedLine(2800, "I25", 10000, "Taxi · Ida"),
        PlannedLine(4000, "none", 2550, "Tip · Ida"),
    )
    assert isinstance(planned.request, PurchaseVoucherCreate)
    assert [line.amount for line in planned.request.lines] == [Decimal("100.00"), Decimal("25.50")]
    assert planned.request.deposit_account_number == 55000
    assert planned.request.external_reference == f"bridge:{item.id}"


def test_a_refund_maps_to_a_manual_voucher_back_into_the_paying_account() -> None:
    item = _item(
        ItemType.OUT_OF_POCKET_EXPENSE, -5000, [{"category_id": str(CATEGORY), "dkk_amount": -5000}]
    )

    planned = plan(item, BOOKS)

    assert planned.target == MANUAL
    assert planned.lines == (PlannedLine(55100, "none", 5000, "Taxi · Ida", 2800, "I25"),)
    assert isinstance(planned.request, ManualVoucherCreate)
    assert planned.request.lines[0].amount == Decimal("50.00")


def test_a_reimbursement_maps_to_one_ledger_item_with_our_id() -> None:
    planned = plan(_item(ItemType.REIMBURSEMENT, 42000), BOOKS)

    assert planned.target == LEDGER
    assert planned.lines == (PlannedLine(55100, "none", 42000, "Taxi · Ida", 58000, "none"),)
    assert isinstance(planned.request, LedgerItem)
    assert planned.request.id == uuid.UUID(int=7)


def test_a_line_that_cannot_be_mapped_waits_with_its_reason() -> None:
    item = _item(ItemType.CARD_EXPENSE, 100, [{"account_number": 9999, "dkk_amount": 100}])

    with pytest.raises(Wait) as waited:
        plan(item, BOOKS)
    assert waited.value.code == "account_unavailable"

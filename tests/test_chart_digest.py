"""The chart digest lets a resync skip the compare only when the stored rows would come out the
same: every change to a field a sync stores from Dinero's lists changes the digest, and a field
it never stores does not.

The rows a sync stores are `Chart.accounts` (the three account lists merged) and the tax codes
(from the VAT types); the tests change one field of one row at a time. The digest hashes the
lists before they are merged, so it may also change where the merge hides a change (an entry
account's name where the purchase list names the same account): that costs one compare that
finds nothing, never a missed change.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from app.chart.sync import Chart, chart_digest
from app.dinero.models import AccountingYear, DepositAccount, EntryAccount, VatType


def _chart() -> Chart:
    def entry(number: int, name: str, vat_code: str = "I25", **extra: Any) -> EntryAccount:
        return EntryAccount(account_number=number, name=name, vat_code=vat_code, **extra)

    return Chart(
        entry=[entry(1000, "Salg", vat_code="U25"), entry(2000, "Varekøb"), entry(5810, "Bank")],
        purchase=[entry(2000, "Varekøb"), entry(2010, "Kontorartikler", category="Kontor")],
        deposit=[
            DepositAccount(
                account_number=5810,
                name="Bank",
                is_default=True,
                bank_registration_number="1234",
                bank_account_number="0012345678",
            ),
            DepositAccount(account_number=5820, name="Kasse"),
        ],
        vat_types=[
            VatType(vat_code="I25", name="Købsmoms", vat_rate=Decimal("0.25")),
            VatType(vat_code="REP", name="Repræsentation", vat_rate=Decimal("0.0625")),
        ],
        years=[AccountingYear(name="2026")],
    )


def _other(value: Any) -> Any:
    """A value of the same kind as `value`, different from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, Decimal):
        return value + Decimal("0.01")
    return f"{value or ''}x"


def _stored(chart: Chart) -> tuple[Any, ...]:
    """What a sync stores from `chart`: the merged accounts and the VAT types' columns."""
    vat = sorted((v.vat_code, v.name, v.vat_rate) for v in chart.vat_types)
    return (_incoming(chart), vat)


def _incoming(chart: Chart) -> dict[int, dict[str, Any]]:
    # A fresh Chart: `accounts` is cached on the instance.
    return dataclasses.replace(chart).accounts


def _changes() -> list[tuple[str, int, str]]:
    """(list, index, field) for every field of every row of the chart's four lists."""
    chart = _chart()
    out = []
    for name in ("entry", "purchase", "deposit", "vat_types"):
        rows: list[BaseModel] = getattr(chart, name)
        for index, row in enumerate(rows):
            out += [(name, index, field) for field in type(row).model_fields]
    return out


def _changed(chart: Chart, list_name: str, index: int, field: str) -> Chart:
    rows: list[BaseModel] = list(getattr(chart, list_name))
    rows[index] = rows[index].model_copy(update={field: _other(getattr(rows[index], field))})
    replaced: dict[str, Any] = {list_name: rows}
    return dataclasses.replace(chart, **replaced)


def _stores_differently(list_name: str, index: int, field: str) -> bool:
    chart = _chart()
    return _stored(_changed(chart, list_name, index, field)) != _stored(chart)


@pytest.mark.parametrize(
    ("list_name", "index", "field"), [c for c in _changes() if _stores_differently(*c)]
)
def test_a_change_to_what_a_sync_stores_changes_the_digest(
    list_name: str, index: int, field: str
) -> None:
    chart = _chart()
    assert chart_digest(_changed(chart, list_name, index, field)) != chart_digest(chart)


def test_a_field_no_sync_stores_leaves_the_digest_alone() -> None:
    stored_somewhere = {
        (name, field) for name, i, field in _changes() if _stores_differently(name, i, field)
    }
    never_stored = [
        (name, index, field)
        for name, index, field in _changes()
        if (name, field) not in stored_somewhere
    ]

    assert ("entry", 0, "public_standard_number") in never_stored
    assert ("vat_types", "vat_rate") in stored_somewhere  # the split can tell them apart
    chart = _chart()
    for name, index, field in never_stored:
        changed = _changed(chart, name, index, field)
        assert chart_digest(changed) == chart_digest(chart), (name, field)


def test_the_order_dinero_lists_accounts_in_does_not_change_the_digest() -> None:
    chart = _chart()
    reordered = dataclasses.replace(
        chart,
        entry=list(reversed(chart.entry)),
        deposit=list(reversed(chart.deposit)),
        vat_types=list(reversed(chart.vat_types)),
    )
    assert chart_digest(reordered) == chart_digest(chart)


def test_the_accounting_years_are_not_in_the_digest() -> None:
    """They are compared on every sync, apart from the digest."""
    chart = _chart()
    assert chart_digest(dataclasses.replace(chart, years=[])) == chart_digest(chart)

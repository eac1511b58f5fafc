"""Money on the wire: JSON numbers with exactly two decimals; Decimals back, never floats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from app.dinero.wire import MoneyFormatError, dumps, format_money, format_utc, loads


@pytest.mark.parametrize(
    ("amount", "wire"),
    [
        (Decimal("245.00"), "245.00"),
        (Decimal("245"), "245.00"),
        (Decimal("245.5"), "245.50"),
        (Decimal("-200"), "-200.00"),
        (Decimal("0.1"), "0.10"),
        (Decimal("1234567.89"), "1234567.89"),
        (Decimal("245.000"), "245.00"),
        (Decimal("-0.00"), "0.00"),
        (Decimal("1E+2"), "100.00"),
    ],
)
def test_money_goes_out_with_exactly_two_decimals(amount: Decimal, wire: str) -> None:
    assert format_money(amount) == wire
    assert dumps({"Amount": amount}) == f'{{"Amount":{wire}}}'.encode()


@pytest.mark.parametrize("amount", [Decimal("1.005"), Decimal("0.001"), Decimal("NaN")])
def test_money_that_would_need_rounding_is_refused(amount: Decimal) -> None:
    with pytest.raises(MoneyFormatError):
        dumps({"Amount": amount})


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError, match="float"):
        dumps({"Amount": 245.0})


def test_other_values_encode_as_dinero_expects() -> None:
    body = {
        "VoucherDate": date(2024, 3, 1),
        "Id": UUID("bf453202-d755-4602-aae0-f79819fb7ef0"),
        "AccountNumber": 2000,
        "IsPerson": False,
        "Note": None,
        "Description": 'Taxa "Nord" kørsel',
        "Lines": [{"Amount": Decimal("12.5")}],
    }
    assert (
        dumps(body)
        == (
            '{"VoucherDate":"2024-03-01","Id":"bf453202-d755-4602-aae0-f79819fb7ef0",'
            '"AccountNumber":2000,"IsPerson":false,"Note":null,'
            '"Description":"Taxa \\"Nord\\" kørsel","Lines":[{"Amount":12.50}]}'
        ).encode()
    )


def test_incoming_numbers_become_decimals_not_floats() -> None:
    data = loads(b'{"Amount": 245.10, "Rate": 0.25, "AccountNumber": 2000, "Big": 1e2}')
    assert data["Amount"] == Decimal("245.10")
    assert isinstance(data["Amount"], Decimal)
    assert isinstance(data["Rate"], Decimal)
    assert data["AccountNumber"] == 2000
    assert isinstance(data["Big"], Decimal)


def test_non_finite_numbers_from_dinero_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        loads(b'{"Amount": NaN}')


def test_utc_timestamps_use_dinero_format() -> None:
    cet = timezone(timedelta(hours=1))
    assert format_utc(datetime(2015, 8, 18, 7, 36, 22, 999, tzinfo=cet)) == "2015-08-18T06:36:22Z"
    assert format_utc(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_utc(datetime(2024, 1, 1))

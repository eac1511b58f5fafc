"""JSON on Dinero's wire: money as numbers with exactly two decimals, never floats."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import SecretStr

TWO_PLACES = Decimal("0.01")


class MoneyFormatError(ValueError):
    """An amount that cannot be sent to Dinero as XXXX.YY without rounding."""


def format_money(value: Decimal) -> str:
    """Render an amount as a JSON number with exactly two decimals (`245.00`, `-0.50`)."""
    if not value.is_finite():
        raise MoneyFormatError(f"amount {value!r} is not a finite number")
    quantized = value.quantize(TWO_PLACES)
    if quantized != value:
        raise MoneyFormatError(f"amount {value} has more than two decimals; round it first")
    if quantized.is_zero():
        quantized = abs(quantized)  # "-0.00" would be odd in the books
    return format(quantized, "f")


def format_utc(value: datetime) -> str:
    """Render an aware datetime as Dinero's `YYYY-MM-DDTHH:mm:ssZ` (UTC, whole seconds)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (Dinero expects UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        out.append(json.dumps(value))
    elif isinstance(value, Decimal):
        out.append(format_money(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        # Money must never travel as a float; other floats do not occur in Dinero's write models.
        raise TypeError("refusing to send a float to Dinero; use Decimal")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, enum.Enum):
        _encode(value.value, out)
    elif isinstance(value, datetime):
        out.append(json.dumps(format_utc(value)))
    elif isinstance(value, date):
        out.append(json.dumps(value.isoformat()))
    elif isinstance(value, UUID):
        out.append(json.dumps(str(value)))
    elif isinstance(value, SecretStr):
        raise TypeError("refusing to serialise a secret into a Dinero request body")
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON for Dinero")


def dumps(value: Any) -> bytes:
    """Encode a request body; every Decimal becomes a two-decimal JSON number."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Dinero sent a non-finite number ({name})")


def loads(data: bytes | str) -> Any:
    """Decode a response body; every non-integer number becomes a Decimal (never a float)."""
    return json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)


__all__ = ["MoneyFormatError", "dumps", "format_money", "format_utc", "loads"]

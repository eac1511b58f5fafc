"""Dinero's wire format: JSON with PascalCase names, money as JSON numbers, request models.

Request bodies are parsed with `Decimal` for every JSON number with a fraction, so money never
passes through a float; they are checked strictly (unknown properties and wrong types refused,
like the subset's `additionalProperties: false`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
)
from pydantic.alias_generators import to_pascal
from starlette.requests import Request
from starlette.responses import JSONResponse

from dinero_sandbox.errors import validation_error

TWO_PLACES = Decimal("0.01")
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def iso_datetime(moment: datetime) -> str:
    """`2026-11-03T09:00:00Z` (RFC 3339, UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonable(value: Any) -> Any:
    """Python values → JSON values: Decimal becomes a JSON number (2 decimals stay exact)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        # Only the final rendering touches float; repr(float) is the shortest round-trip form,
        # so 2-decimal amounts come out exactly (123.45, not 123.4500000001).
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


class DineroJSONResponse(JSONResponse):
    """JSON the way Dinero sends it (UTF-8, numbers for money)."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(
            jsonable(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body with exact decimals; `None` when empty and not required."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise validation_error({"body": "A request body is required"}, "Request body missing")
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise validation_error({"body": f"Invalid JSON: {exc}"}, "Invalid JSON") from exc


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "body"


def _message(error: Any) -> str:
    field = str(error["loc"][-1]) if error["loc"] else "body"
    kind = error["type"]
    if kind == "missing":
        return f"The {field} field is required."
    if kind == "extra_forbidden":
        return f"{field} is not a known property."
    return str(error["msg"])


M = TypeVar("M")


def parse(adapter: TypeAdapter[M], data: Any) -> M:
    """Validate a JSON value; failure is a Dinero 400 with one message per property."""
    try:
        return adapter.validate_python(data, strict=True)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            errors.setdefault(_location(error["loc"]), _message(error))
        raise validation_error(errors) from exc


def parse_model(model: type[M], data: Any) -> M:
    """`parse` for one model class."""
    return parse(TypeAdapter(model), data)


# --------------------------------------------------------------------------------------------
# Field types


def _money(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise ValueError("must be a JSON number")
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    return amount


def _uuid(value: str) -> str:
    if not UUID_RE.match(value):
        raise ValueError("must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    return value.lower()


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _date_time(value: str) -> str:
    if not _RFC3339.match(value):
        raise ValueError("must be a date-time such as 2026-11-03T00:00:00Z")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError("must be a valid date-time") from exc
    return value


Money = Annotated[Decimal, PlainValidator(_money)]
DateTimeText = Annotated[str, AfterValidator(_date_time)]
Guid = Annotated[str, AfterValidator(_uuid)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
NonEmpty = Annotated[str, Field(min_length=1)]
Reference = Annotated[str, Field(max_length=128)]


class WireModel(BaseModel):
    """A Dinero request model: PascalCase names, nothing unknown, strict types."""

    model_config = ConfigDict(
        alias_generator=to_pascal,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        frozen=True,
    )


# --------------------------------------------------------------------------------------------
# Request models (names as in the subset's components/schemas)


class AccountCreateModel(WireModel):
    number: Int32
    name: NonEmpty
    vat_code: NonEmpty
    public_standard_number: Int32 | None = None


class DepositCreateModel(WireModel):
    number: Int32
    name: NonEmpty
    public_standard_number: Int32 | None = None
    registration_number: str | None = None
    account_number: str | None = None
    swift_number: str | None = None
    iban_number: str | None = None


class PurchaseVoucherLineCreateModel(WireModel):
    amount: Money
    account_number: Int32 | None = None
    description: str | None = None
    vat_code: str | None = None
    account_tag_name: str | None = None
    synonym_with_most_weight: str | None = None
    tag_id: Guid | None = None
    tag_version: Int32 | None = None


class PurchaseVoucherCreateModelV2(WireModel):
    purchase_type: NonEmpty
    lines: list[PurchaseVoucherLineCreateModel] | None = None
    voucher_date: str | None = None
    deposit_account_number: Int32 | None = None
    region_key: str | None = None
    file_guid: str | None = None
    contact_guid: Guid | None = None
    payment_date: str | None = None
    currency_key: str | None = None
    external_reference: Reference | None = None


class PurchaseVoucherUpdateModel(WireModel):
    lines: list[PurchaseVoucherLineCreateModel]
    voucher_date: NonEmpty
    timestamp: NonEmpty
    purchase_type: NonEmpty
    contact_guid: Guid
    deposit_account_number: Int32 | None = None
    region_key: str | None = None
    file_guid: str | None = None
    payment_date: str | None = None
    currency_key: str | None = None
    external_reference: Reference | None = None


class BookModel(WireModel):
    timestamp: NonEmpty
    number: Int64 | None = None


class TimestampObject(WireModel):
    timestamp: str | None = None


class RequiredTimestampObject(WireModel):
    timestamp: NonEmpty


class ManuelVoucherLineCreateModel(WireModel):
    amount: Money
    description: str | None = None
    account_number: Int32 | None = None
    balancing_account_number: Int32 | None = None
    account_vat_code: str | None = None
    balancing_account_vat_code: str | None = None


class ManuelVoucherCreateModel(WireModel):
    voucher_date: str | None = None
    lines: list[ManuelVoucherLineCreateModel] | None = None
    file_guid: str | None = None
    external_reference: Reference | None = None


class ManuelVoucherUpdateModel(ManuelVoucherCreateModel):
    timestamp: NonEmpty


class PurchaseCreditNoteCreateModel(WireModel):
    lines: list[PurchaseVoucherLineCreateModel]
    guid: Guid | None = None
    credit_note_for: Guid | None = None
    file_guid: str | None = None
    contact_guid: Guid | None = None
    date: DateTimeText | None = None
    currency: str | None = None


class LedgerItemLineModelV2(WireModel):
    id: Guid | None = None
    description: str | None = None
    amount: Money | None = None
    account_number: Int32 | None = None
    account_vat_code: str | None = None
    balancing_account_number: Int32 | None = None
    balancing_account_vat_code: str | None = None
    is_payment_for_voucher_id: Guid | None = None


class LedgerItemModelV2(WireModel):
    id: Guid | None = None
    version: str | None = None
    voucher_number: Int32 | None = None
    voucher_date: str | None = None
    file_guid: str | None = None
    lines: list[LedgerItemLineModelV2] | None = None


class LedgerItemModel(WireModel):
    id: Guid
    version: str | None = None


class LedgerItemStatusModel(WireModel):
    id: Guid


LEDGER_ITEMS = TypeAdapter(list[LedgerItemModelV2])
LEDGER_REFS = TypeAdapter(list[LedgerItemModel])
LEDGER_STATUS_REFS = TypeAdapter(list[LedgerItemStatusModel])


def parse_date(value: str | None, field: str, *, required: bool = False) -> date | None:
    """`YYYY-MM-DD` (a date-time is cut to its date); a 400 naming `field` otherwise."""
    if value is None or value == "":
        if required:
            raise validation_error({field: f"The {field} field is required."})
        return None
    text = value.strip()
    try:
        if len(text) > 10:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        return date.fromisoformat(text)
    except ValueError as exc:
        raise validation_error({field: f"'{value}' is not a date (YYYY-MM-DD)"}) from exc


def check_money(amount: Decimal, field: str) -> Decimal:
    """At most two decimals ("formatted as XXXX.YY"), returned with exactly two."""
    if amount != amount.quantize(TWO_PLACES):
        raise validation_error({field: "The amount can have at most two decimals"})
    return amount.quantize(TWO_PLACES)


def raise_if(errors: dict[str, str]) -> None:
    """Raise a 400 validation error when `errors` is not empty."""
    if errors:
        raise validation_error(errors)

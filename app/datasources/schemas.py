"""API shapes for data sources and their records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.datasources.types import DataType, DateField
from app.inputs import SafeStr

YMD = r"^\d{4}-\d{2}-\d{2}$"
MIN_REFRESH_MINUTES = 5
MAX_REFRESH_MINUTES = 7 * 24 * 60
DEFAULT_REFRESH_MINUTES = 60


class AccountingYearIn(BaseModel):
    """One of the organization's accounting years ("Regnskabsår"), exactly as Dinero has it."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=YMD, examples=["2021-01-01"], description="`YYYY-MM-DD`.")
    end: str = Field(pattern=YMD, examples=["2021-12-31"], description="`YYYY-MM-DD`.")

    @field_validator("start", "end")
    @classmethod
    def _calendar_date(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value} is not a calendar date") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> AccountingYearIn:
        if self.end_date < self.start_date:
            raise ValueError("end is before start")
        return self

    @property
    def start_date(self) -> date:
        return date.fromisoformat(self.start)

    @property
    def end_date(self) -> date:
        return date.fromisoformat(self.end)


def _unique(types: list[DataType]) -> list[DataType]:
    return list(dict.fromkeys(types))


class DataSourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: SafeStr | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Defaults to the data types and the accounting year.",
        examples=["Accounting Year 2021"],
    )
    data_types: list[DataType] = Field(min_length=1, max_length=len(DataType))
    accounting_year: AccountingYearIn | None = Field(
        default=None,
        description=(
            "Required with `entries` (and only then): one of the organization's accounting "
            "years, start and end exactly as in Dinero. Another year is another data source."
        ),
    )
    default_date_field: DateField | None = Field(
        default=None,
        description="The date the records' `date_from`/`date_to` filters use when none is named.",
    )
    refresh_minutes: StrictInt | None = Field(
        default=DEFAULT_REFRESH_MINUTES,
        ge=MIN_REFRESH_MINUTES,
        le=MAX_REFRESH_MINUTES,
        description="How often it is refreshed; null: only on demand.",
    )

    @field_validator("data_types")
    @classmethod
    def _dedupe(cls, value: list[DataType]) -> list[DataType]:
        return _unique(value)


class DataSourcePatch(BaseModel):
    """Fields to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: SafeStr | None = Field(
        default=None, min_length=1, max_length=200, description="null: the default title."
    )
    data_types: list[DataType] | None = Field(
        default=None,
        min_length=1,
        description="Types added are imported by a run started now; types removed are dropped "
        "with their records.",
    )
    default_date_field: DateField | None = Field(default=None, description="null: none.")
    refresh_minutes: StrictInt | None = Field(
        default=None,
        ge=MIN_REFRESH_MINUTES,
        le=MAX_REFRESH_MINUTES,
        description="null: only on demand.",
    )
    # Accepted only to be refused with `accounting_year_immutable`, so not in the document.
    accounting_year: SkipJsonSchema[AccountingYearIn | None] = Field(
        default=None, description="Cannot be changed: another year is another data source."
    )

    @field_validator("data_types")
    @classmethod
    def _dedupe(cls, value: list[DataType] | None) -> list[DataType] | None:
        return None if value is None else _unique(value)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full: StrictBool = Field(
        default=False,
        description=(
            "Read everything again instead of only the changes, and mark what Dinero no longer "
            "has as deleted."
        ),
    )


class AccountingYearOut(BaseModel):
    start: date
    end: date
    name: str | None = Field(default=None, description="Dinero's name of the year.")


class TypeProgress(BaseModel):
    state: Literal["pending", "importing", "ready"] = Field(
        description="pending: not read yet; importing: the first (or a full) read is under way."
    )
    records: int = Field(description="Records present in Dinero, imported so far.")
    deleted_records: int = Field(description="Records deleted in Dinero (kept, marked deleted).")
    refreshed_at: datetime | None


class DataSourceProblem(BaseModel):
    code: str
    message: str
    dinero_message: str | None = None


class DataSourceOut(BaseModel):
    id: UUID
    title: str
    data_types: list[DataType]
    accounting_year: AccountingYearOut | None
    default_date_field: DateField | None
    refresh_minutes: int | None
    organization_id: int
    status: Literal["importing", "ready", "refreshing", "failed"]
    records: int = Field(description="Records present in Dinero, all types together.")
    progress: dict[DataType, TypeProgress] = Field(description="Per data type.")
    error: DataSourceProblem | None = Field(
        default=None,
        description="Why the last run failed, or (with retry_at) why it is waiting.",
    )
    retry_at: datetime | None = Field(
        default=None, description="The run waits for Dinero and goes on at about this time."
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    last_refreshed_at: datetime | None
    next_refresh_at: datetime | None


class DataSourceList(BaseModel):
    items: list[DataSourceOut]


class RefreshOut(BaseModel):
    status: Literal["queued", "already_queued"]
    data_source: DataSourceOut


class RecordOut(BaseModel):
    data_type: DataType
    key: str = Field(description="Dinero's key: a Guid, or an account number.")
    deleted: bool
    deleted_at: datetime | None
    changed_at: datetime = Field(description="When this service last stored a new version.")
    data: dict[str, Any] = Field(description="The record as Dinero sent it (Dinero's names).")


class RecordsPage(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None = Field(
        description=(
            "Pass as `cursor` to read on. Kept after the last page too: later, it returns only "
            "records added or changed since (with `include_deleted`, also deletions)."
        )
    )
    has_more: bool


__all__ = [
    "AccountingYearIn",
    "AccountingYearOut",
    "DataSourceCreate",
    "DataSourceList",
    "DataSourceOut",
    "DataSourcePatch",
    "DataSourceProblem",
    "RecordOut",
    "RecordsPage",
    "RefreshOut",
    "RefreshRequest",
    "TypeProgress",
]

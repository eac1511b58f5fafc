"""Entries read the way Dinero's contract allows them to be written: a date-time where a date is
expected, guids in any spelling, and (for the follow-up) one odd entry not hiding the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
import respx
from pydantic import ValidationError

from app.dinero import DineroClient, DineroError
from app.dinero.models import Entry, guid_key
from tests.dinero.conftest import ORG, RecordingPacer, static_client
from tests.dinero.examples import example

VOUCHER = "b9e5b9b0-1d6e-4d7e-9c0a-8b7f6c5d4e3a"
START = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("written", "day"),
    [
        ("2022-05-16", date(2022, 5, 16)),
        ("2022-05-16T00:00:00", date(2022, 5, 16)),
        ("2022-05-16T14:03:00+02:00", date(2022, 5, 16)),
        ("2022-05-16T23:30:00Z", date(2022, 5, 16)),
        ("2022-05-16 08:00:00", date(2022, 5, 16)),
        (None, None),
    ],
)
def test_an_entry_date_may_be_written_as_a_date_time(written: str | None, day: date) -> None:
    entry = Entry.model_validate(example("EntryReadModel", Date=written))
    assert entry.date == day


@pytest.mark.parametrize(
    "spelling",
    [
        VOUCHER,
        VOUCHER.upper(),
        VOUCHER.replace("-", ""),
        "{" + VOUCHER.upper() + "}",
        "urn:uuid:" + VOUCHER,
        UUID(VOUCHER),
    ],
)
def test_guid_key_is_one_spelling_of_a_guid(spelling: str | UUID) -> None:
    assert guid_key(spelling) == UUID(VOUCHER).hex


def test_guid_key_of_a_non_uuid_file_guid() -> None:
    assert guid_key("web0crmck5v0ndcx3313g6zn61tc7wgc") == "web0crmck5v0ndcx3313g6zn61tc7wgc"
    assert guid_key(" WEB0CRMCK5V0NDCX3313G6ZN61TC7WGC ") == "web0crmck5v0ndcx3313g6zn61tc7wgc"
    assert guid_key(None) is None
    assert guid_key("") is None


@pytest.fixture
async def plain_client(pacer: RecordingPacer) -> AsyncIterator[DineroClient]:
    # No contract hooks: these answers are deliberately not what the contract allows.
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
        yield static_client(http, pacer)


ODD_ANSWER = [
    example(
        "EntryReadModel",
        EntryGuid="11111111-1111-4111-8111-111111111111",
        VoucherGuid=VOUCHER.upper(),
        Date="2026-11-03T14:03:00+01:00",
    ),
    # Optional fields that do not parse: left out, the rest of the entry kept.
    example(
        "EntryReadModel",
        EntryGuid="22222222-2222-4222-8222-222222222222",
        VoucherGuid="not-a-guid",
        FileGuid="F1",
        Date="03-11-2026",
    ),
    # A required field that does not parse: the entry is skipped and reported.
    example("EntryReadModel", EntryGuid="33333333-3333-4333-8333-333333333333", Amount="lots"),
    None,
]


async def test_with_on_invalid_one_odd_entry_does_not_hide_the_others(
    plain_client: DineroClient, dinero: respx.MockRouter
) -> None:
    dinero.get(f"/v1/{ORG}/entries/changes").respond(200, json=ODD_ANSWER)
    skipped: list[tuple[Any, ValidationError]] = []

    entries = await plain_client.entry_changes(
        START, START + timedelta(hours=1), on_invalid=lambda raw, exc: skipped.append((raw, exc))
    )

    assert [(e.voucher_guid, e.file_guid, e.date) for e in entries] == [
        (UUID(VOUCHER), "d29f89bf-4148-4573-a24e-4578266a572d", date(2026, 11, 3)),
        (None, "F1", None),
    ]
    assert [raw for raw, _ in skipped] == [ODD_ANSWER[2], None]


async def test_without_on_invalid_an_odd_entry_fails_the_answer(
    plain_client: DineroClient, dinero: respx.MockRouter
) -> None:
    dinero.get(f"/v1/{ORG}/entries/changes").respond(200, json=ODD_ANSWER)
    with pytest.raises(DineroError, match="expected shape"):
        await plain_client.entry_changes(START, START + timedelta(hours=1))

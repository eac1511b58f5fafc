"""Godkend and deletion in Dinero are noticed within two follow-up cycles, not by the 30-minute
round of reads: against the stand-in Dinero (reading `GET files?uploadedAfter=` either way),
and against a double that follows Dinero's contract to the letter (made with respx, every answer
built from the contract's schemas and every exchange checked against them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import update

from app.exports.models import ExportItem, ItemStatus, Step
from app.follow_up.result import CycleResult
from tests.contract import ContractTransport
from tests.follow_up.conftest import (
    World,
    card_expense,
    follow,
    item_api,
    item_row,
    settle,
)
from tests.killing import Killed
from tests.sandboxed import PRO_ORG

DINERO_HOST = "dinero.test"


async def _draft(w: World, company: str, amount: int) -> ExportItem:
    item_id = await card_expense(w.service, company, amount)
    await settle(w.service, company)
    row = await item_row(w.service, item_id)
    assert row.status == ItemStatus.AWAITING_APPROVAL
    assert row.dinero_guid is not None
    assert row.dinero_file_guid is not None
    return row


async def _three_drafts(w: World, company: str) -> tuple[ExportItem, ExportItem, ExportItem]:
    """To approve, to delete, to leave waiting; each read once (as new drafts are)."""
    drafts = (
        await _draft(w, company, 24500),
        await _draft(w, company, 9900),
        await _draft(w, company, 5000),
    )
    first = await follow(w, company)
    assert (first.booked, first.deleted, first.edited, first.reads) == (0, 0, 0, 3)
    return drafts


async def _cycles_until_settled(
    w: World, company: str, items: list[uuid.UUID], most: int = 2
) -> list[CycleResult]:
    """Follow-up cycles until none of `items` awaits approval any more, at most `most`."""
    results: list[CycleResult] = []
    for _ in range(most):
        results.append(await follow(w, company))
        statuses = {(await item_row(w.service, item_id)).status for item_id in items}
        if ItemStatus.AWAITING_APPROVAL not in statuses:
            break
    return results


async def _assert_noticed(
    w: World, company: str, approved: ExportItem, number: int, deleted: ExportItem
) -> None:
    """What the database holds and what the API answers."""
    booked_row = await item_row(w.service, approved.id)
    assert (booked_row.status, booked_row.step) == (ItemStatus.BOOKED, Step.BOOKED)
    assert booked_row.dinero_voucher_number == number
    assert booked_row.booked_at is not None
    deleted_row = await item_row(w.service, deleted.id)
    assert deleted_row.status == ItemStatus.DELETED_IN_DINERO
    booked_body = await item_api(w, company, approved.id)
    assert booked_body["status"] == "booked"
    assert booked_body["dinero"]["voucher_number"] == number
    assert (await item_api(w, company, deleted.id))["status"] == "deleted_in_dinero"


# --- the stand-in Dinero -----------------------------------------------------------------------


@pytest.mark.parametrize("reading", ["sensible", "as_documented"])
async def test_godkend_and_deletion_in_the_sandbox_are_noticed_within_two_cycles(
    w: World, company: str, reading: str
) -> None:
    w.service.sandbox.configure(uploaded_filters=reading)
    approved, deleted, waiting = await _three_drafts(w, company)
    number = w.service.sandbox.approve_purchase_voucher(
        PRO_ORG, str(approved.dinero_guid)
    ).voucher_number
    assert number is not None
    w.service.sandbox.delete_purchase_voucher(PRO_ORG, str(deleted.dinero_guid))
    w.service.sandbox.clear_requests()

    results = await _cycles_until_settled(w, company, [approved.id, deleted.id])

    assert len(results) <= 2
    assert sum(r.booked for r in results) == 1
    assert sum(r.deleted for r in results) == 1
    await _assert_noticed(w, company, approved, number, deleted)
    # Not the 30-minute round: the entries said the approval, the archive pointed at the
    # deleted draft, and only that one was read.
    reads = w.service.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/vouchers/purchase/*")
    assert [r.path for r in reads] == [f"/v1/{PRO_ORG}/vouchers/purchase/{deleted.dinero_guid}"]
    listings = w.service.sandbox.find_requests("GET", f"/v1/{PRO_ORG}/files")
    assert listings
    assert all(set(r.query) & {"uploadedAfter", "uploadedBefore"} == set() for r in listings)
    assert (await item_row(w.service, waiting.id)).status == ItemStatus.AWAITING_APPROVAL


# --- a double of Dinero built from its contract alone -------------------------------------------


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _slash_day(raw: str) -> datetime:
    return datetime.strptime(raw, "%Y/%m/%d").replace(tzinfo=UTC)


@dataclass
class LiteralDinero:
    """Dinero read word by word from dinero-openapi-subset.json.

    - `entries/changes`: "all Entries added in a given time range" (`changesFrom`/`changesTo`,
      date-time); a Godkend adds the voucher's entries. Each names its voucher by `VoucherGuid`
      ("Guid identifying the voucher this entry belongs to, if any": written here in upper
      case, or null with `voucher_guid=False`) and carries `FileGuid` ("Identifier of the
      file … on this entry's voucher": upper case here, while the archive spells it in lower
      case); `Date` is only "a string" (a date-time here; one entry of someone else's voucher
      has a date in Danish order).
    - `files`: "uploadedAfter: limits the search to the given before date" (an upper bound
      here) and "uploadedBefore: limits the search to the given after" (a lower bound);
      `fileStatus` honoured unless `honours_status=False`. A deleted draft "will simply be
      removed": its file stays in the archive, linked to nothing.
    """

    voucher_guid: bool = True
    honours_status: bool = True
    vouchers: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    die_reading: set[str] = field(default_factory=set)
    """Voucher guids whose read kills the worker (once each)."""
    read: list[str] = field(default_factory=list)
    """Voucher guids asked for, in order."""
    router: respx.MockRouter = field(
        default_factory=lambda: respx.MockRouter(base_url=f"http://{DINERO_HOST}")
    )

    def __post_init__(self) -> None:
        org = f"/v1/{PRO_ORG}"
        self.router.get(f"{org}/entries/changes").mock(side_effect=self._entry_changes)
        self.router.get(f"{org}/files").mock(side_effect=self.list_files)
        self.router.get(path__regex=rf"^{org}/vouchers/purchase/(?P<guid>[^/]+)$").mock(
            side_effect=self._voucher
        )
        # An old receipt nobody used, from before any of the drafts.
        self._add_file("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", datetime(2024, 3, 1, tzinfo=UTC))

    def transport(self) -> httpx.AsyncBaseTransport:
        return ContractTransport(
            httpx.MockTransport(self.router.async_handler), strict_requests=True
        )

    # set-up and the accountant

    def _add_file(self, file_guid: str, uploaded: datetime, voucher: str | None = None) -> None:
        links = []
        if voucher is not None:
            links.append(
                {
                    "VoucherId": len(self.files) + 1,
                    "VoucherGuid": voucher.upper(),
                    "LinkedAt": _utc(uploaded),
                }
            )
        self.files[file_guid] = {
            "FileGuid": file_guid,
            "Name": "receipt.pdf",
            "Extension": "pdf",
            "Size": 20480,
            "UploadedAt": _utc(uploaded),
            "Note": None,
            "NumberOfPages": 1,
            "Linked": links,
            "UploadedBy": "api",
        }

    def add_draft(self, row: ExportItem) -> None:
        guid, file_guid = str(row.dinero_guid), row.dinero_file_guid
        assert file_guid is not None
        self.vouchers[guid] = {
            "Guid": guid,
            "Timestamp": row.dinero_timestamp,
            "Status": "Draft",
            "FileGuid": file_guid,
            "VoucherNumber": None,
            "VoucherDate": "2026-11-03",
            "PaymentDate": "2026-11-03",
            "RegionKey": "DK",
            "PurchaseType": "cash",
            "Lines": [],
            "DepositAccountNumber": 55030,
            "ContactGuid": None,
            "ExternalReference": row.external_id,
            "VoucherTotals": [],
            "CurrencyKey": "DKK",
            "BookedByType": None,
            "BookedByUsername": None,
            "BookingTime": None,
        }
        self._add_file(file_guid, datetime.now(UTC), voucher=guid)

    def godkend(self, guid: str, number: int) -> None:
        voucher = self.vouchers[guid]
        voucher.update(
            Status="Paid",
            VoucherNumber=number,
            Timestamp="00000000020A5EA9",
            BookedByType="Web",
            BookedByUsername="revisor@example.dk",
            BookingTime="2026-11-03",
        )
        now = datetime.now(UTC)
        for account, amount in ((2800, 245), (55030, -245)):
            self.entries.append(
                (
                    now,
                    {
                        "AccountNumber": account,
                        "AccountName": "Udgift",
                        "Date": "2026-11-03T14:03:00+01:00",
                        "VoucherNumber": number,
                        "VoucherGuid": guid.upper() if self.voucher_guid else None,
                        "FileGuid": str(uuid.UUID(voucher["FileGuid"])).upper(),
                        "VoucherType": "Purchases",
                        "Description": None,
                        "VatType": None,
                        "VatCode": None,
                        "Amount": amount,
                        "EntryGuid": str(uuid.uuid4()),
                        "ContactGuid": None,
                        "Type": "Normal",
                    },
                )
            )
        # Someone else's voucher booked at the same time, its Date in another order.
        self.entries.append(
            (
                now,
                {
                    "AccountNumber": 1000,
                    "Amount": 100,
                    "Date": "03-11-2026",
                    "VoucherNumber": number + 1,
                    "VoucherGuid": str(uuid.uuid4()),
                    "FileGuid": None,
                    "VoucherType": "manuel",
                    "EntryGuid": str(uuid.uuid4()),
                    "Type": "Normal",
                },
            )
        )

    def delete(self, guid: str) -> None:
        voucher = self.vouchers.pop(guid)
        self.files[voucher["FileGuid"]]["Linked"] = []

    # the answers

    def _entry_changes(self, request: httpx.Request) -> httpx.Response:
        low = _instant(request.url.params["changesFrom"])
        high = _instant(request.url.params["changesTo"])
        return httpx.Response(
            200, json=[entry for added, entry in self.entries if low <= added <= high]
        )

    def list_files(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        status = params.get("fileStatus", "All")
        rows = []
        for stored in self.files.values():
            day = _instant(stored["UploadedAt"]).replace(hour=0, minute=0, second=0)
            if "uploadedAfter" in params and day > _slash_day(params["uploadedAfter"]):
                continue  # "limits the search to the given before date"
            if "uploadedBefore" in params and day < _slash_day(params["uploadedBefore"]):
                continue  # "limits the search to the given after"
            used = bool(stored["Linked"])
            if self.honours_status and status != "All" and used != (status == "Used"):
                continue
            rows.append(stored)
        page, size = int(params.get("page", 0)), int(params.get("pageSize", 1000))
        return httpx.Response(200, json=rows[page * size : (page + 1) * size])

    def _voucher(self, request: httpx.Request, guid: str) -> httpx.Response:
        self.read.append(guid)
        if guid in self.die_reading:
            self.die_reading.discard(guid)
            raise Killed(guid)
        voucher = self.vouchers.get(guid)
        if voucher is None:
            return httpx.Response(404, json={"code": 40, "message": "Voucher not found"})
        return httpx.Response(200, json=voucher)

    def listings(self) -> list[httpx.QueryParams]:
        return [
            c.request.url.params for c in self.router.calls if c.request.url.path.endswith("/files")
        ]


async def _switch_to_double(
    w: World, double: LiteralDinero, drafts: tuple[ExportItem, ...]
) -> None:
    """The company's drafts now live in the double; their file guids are uuids, as the
    archive's examples show them."""
    for row in drafts:
        file_guid = str(uuid.uuid4())
        async with w.services.sessionmaker() as session, session.begin():
            await session.execute(
                update(ExportItem).where(ExportItem.id == row.id).values(dinero_file_guid=file_guid)
            )
        row.dinero_file_guid = file_guid
        double.add_draft(row)
    w.hosts.routes[DINERO_HOST] = double.transport()


@pytest.mark.parametrize(
    ("voucher_guid", "honours_status"),
    [(True, True), (False, False)],
    ids=["entries-name-the-voucher", "entries-carry-only-the-file"],
)
async def test_godkend_and_deletion_in_a_literal_double_are_noticed_within_two_cycles(
    w: World, company: str, voucher_guid: bool, honours_status: bool
) -> None:
    approved, deleted, waiting = await _three_drafts(w, company)
    double = LiteralDinero(voucher_guid=voucher_guid, honours_status=honours_status)
    await _switch_to_double(w, double, (approved, deleted, waiting))
    # The way the follow-up used to ask would find nothing in this archive.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y/%m/%d")
    asked_before = double.list_files(
        httpx.Request(
            "GET", "http://x/", params={"fileStatus": "Unused", "uploadedAfter": yesterday}
        )
    )
    double.godkend(str(approved.dinero_guid), 7)
    double.delete(str(deleted.dinero_guid))
    assert [f["FileGuid"] for f in asked_before.json()] == ["0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"]

    results = await _cycles_until_settled(w, company, [approved.id, deleted.id])

    assert len(results) <= 2
    assert all(r.stopped is None for r in results), [r.error for r in results]
    assert sum(r.booked for r in results) == 1
    assert sum(r.deleted for r in results) == 1
    await _assert_noticed(w, company, approved, 7, deleted)
    read_first = [str(deleted.dinero_guid)]
    if not voucher_guid:
        read_first.append(str(approved.dinero_guid))  # the file named it: read, then booked
    assert sorted(double.read) == sorted(read_first)  # the waiting draft was not read
    assert all(
        "uploadedAfter" not in params and "uploadedBefore" not in params
        for params in double.listings()
    )
    assert (await item_row(w.service, waiting.id)).status == ItemStatus.AWAITING_APPROVAL


async def test_an_approval_seen_only_by_its_file_survives_a_worker_dying_before_the_read(
    w: World, company: str
) -> None:
    approved, deleted, waiting = await _three_drafts(w, company)
    double = LiteralDinero(voucher_guid=False)
    await _switch_to_double(w, double, (approved, deleted, waiting))
    guid = str(approved.dinero_guid)
    double.godkend(guid, 12)
    double.die_reading.add(guid)

    with pytest.raises(Killed):
        await follow(w, company)
    assert (await item_row(w.service, approved.id)).follow_up_checked_at is None
    double.entries.clear()  # the next cycle's window no longer shows the booking

    result = await follow(w, company)

    assert result.booked == 1
    row = await item_row(w.service, approved.id)
    assert (row.status, row.dinero_voucher_number) == (ItemStatus.BOOKED, 12)
    assert double.read == [guid, guid]  # the read that died, then the one that booked

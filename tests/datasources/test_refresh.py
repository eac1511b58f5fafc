"""Refreshes: only what changed, deletions marked, on demand and on schedule, sharing the budget,
and an interrupted import that resumes where it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dinero_sandbox.reads import PRIMO_NAMESPACE
from procrastinate import JobContext
from procrastinate.jobs import Job

from app import jobs, services
from app.datasources import tasks
from app.dinero.pacing import Claim, Lane, PacerBusy
from tests.datasources.conftest import (
    ALL_TYPES,
    ORG,
    PAGE,
    YEAR_2026,
    World,
    book_entry,
    live,
)


def _by_key(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(item["data_type"], item["key"]): item for item in items}


async def _cursor_at_end(world: World, data_source_id: str) -> str:
    response = await world.records(data_source_id, include_deleted=True, limit=1000)
    page = response.json()
    assert not page["has_more"]
    cursor: str = page["next_cursor"]
    return cursor


async def test_refresh_reads_only_changes_and_marks_deletions(world: World) -> None:
    created = await world.created(data_types=ALL_TYPES, accounting_year=YEAR_2026)
    await world.run_jobs()
    source_id = created["id"]
    before = await world.get(source_id)
    cursor = await _cursor_at_end(world, source_id)

    # Meanwhile, in Dinero:
    sandbox = world.sandbox
    books = sandbox.org(ORG)
    contacts = sorted(sandbox.records(ORG, "contacts"), key=lambda r: r.guid)
    renamed, removed = contacts[0], contacts[1]
    sandbox.update_record(ORG, "contacts", renamed.guid, Name="Omdøbt ApS")
    sandbox.delete_record(ORG, "contacts", removed.guid)
    added = sandbox.add_record(ORG, "contacts", Name="Ny Kunde ApS")
    invoice = next(iter(sandbox.records(ORG, "invoices")))
    sandbox.delete_record(ORG, "invoices", invoice.guid)
    product = next(iter(sandbox.records(ORG, "products")))
    sandbox.update_record(ORG, "products", product.guid, BaseAmountValue=Decimal("999.95"))
    offer = sandbox.add_record(ORG, "tradeoffers")
    booked = book_entry(sandbox, date(2026, 11, 20), 4000, "250.00")
    book_entry(sandbox, date(2025, 12, 30), 4000, "100.00")  # another year: not this one's
    sandbox.add_account(ORG, 1234, "Ny salgskonto")
    sandbox.add_account(ORG, 55900, "Ny bank", deposit=True)
    gone_account = 1010 if 1010 in books.accounts else sorted(books.accounts)[1]
    del books.accounts[gone_account]
    sandbox.clear_requests()

    response = await world.refresh(source_id)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["data_source"]["status"] == "refreshing"
    await world.run_jobs()

    after = await world.get(source_id)
    assert after["status"] == "ready"
    assert after["last_refreshed_at"] > before["last_refreshed_at"]

    # Only changes were asked for: changesSince (then deletedOnly) on the paged lists, the
    # change log for entries; the unpaged account lists are read whole.
    contact_calls = world.requests(f"/v1/{ORG}/contacts")
    assert [c.query.get("deletedOnly") for c in contact_calls] == [None, "true"]
    assert all("changesSince" in c.query for c in contact_calls)
    assert world.requests(f"/v1/{ORG}/entries") == []
    assert len(world.requests(f"/v1/{ORG}/entries/changes")) == 1
    total_calls = len(world.sandbox.find_requests("GET", f"/v1/{ORG}/*"))
    assert total_calls == 5 * 2 + 1 + 2  # five paged types twice, entries/changes, 2 account lists

    everything = _by_key(await world.all_records(source_id, include_deleted=True))
    assert everything[("contacts", renamed.guid)]["data"]["Name"] == "Omdøbt ApS"
    gone = everything[("contacts", removed.guid)]
    assert gone["deleted"] is True
    assert gone["deleted_at"] is not None
    assert gone["data"]["DeletedAt"] is not None
    assert everything[("contacts", added.guid)]["deleted"] is False
    assert everything[("invoices", invoice.guid)]["deleted"] is True
    assert everything[("sales", invoice.guid)]["deleted"] is True
    assert Decimal(str(everything[("products", product.guid)]["data"]["BaseAmountValue"])) == (
        Decimal("999.95")
    )
    assert ("trade_offers", offer.guid) in everything
    assert everything[("entries", booked.guid)]["data"]["Amount"] == 250
    assert everything[("entry_accounts", str(gone_account))]["deleted"] is True
    assert everything[("entry_accounts", "1234")]["deleted"] is False
    assert everything[("deposit_accounts", "55900")]["deleted"] is False

    # Deleted records are not silently kept among the live ones.
    live_contacts = {i["key"] for i in await world.all_records(source_id, data_type="contacts")}
    assert live_contacts == live(sandbox, "contacts")
    assert removed.guid not in live_contacts
    assert after["progress"]["contacts"]["records"] == before["progress"]["contacts"]["records"]
    assert after["progress"]["contacts"]["deleted_records"] == 1
    assert after["progress"]["invoices"]["deleted_records"] == 1

    # The 2025 booking moved the 2026 opening balance (primo) of the bank: same entry, new
    # amount, not a new entry; the 2026 entries grew by the two booked lines only.
    primo_bank = str(uuid.uuid5(PRIMO_NAMESPACE, f"{ORG}:2026:55000"))
    assert ("entries", primo_bank) in everything
    assert after["progress"]["entries"]["records"] == before["progress"]["entries"]["records"] + 2

    # A reader holding the cursor from before gets exactly what changed.
    changed = await world.records(source_id, cursor=cursor, include_deleted=True, limit=1000)
    keys = {(i["data_type"], i["key"]) for i in changed.json()["items"]}
    expected = {
        ("contacts", renamed.guid),
        ("contacts", removed.guid),
        ("contacts", added.guid),
        ("invoices", invoice.guid),
        ("sales", invoice.guid),
        ("products", product.guid),
        ("trade_offers", offer.guid),
        ("entries", booked.guid),
        ("entry_accounts", "1234"),
        ("entry_accounts", str(gone_account)),
        ("deposit_accounts", "55900"),
        ("entry_accounts", "55900"),  # entry accounts are all accounts
    }
    assert expected <= keys
    others = keys - expected
    assert all(t == "entries" for t, _ in others), others  # the second line and primo updates
    assert ("entries", primo_bank) in others


async def test_full_refresh_marks_what_vanished_without_a_trace(world: World) -> None:
    created = await world.created(data_types=["contacts"])
    await world.run_jobs()
    books = world.sandbox.org(ORG)
    vanished = sorted(books.records["contacts"])[0]
    del books.records["contacts"][vanished]  # gone without a DeletedAt: changes cannot tell

    await world.refresh(created["id"])
    await world.run_jobs()
    keys = {i["key"] for i in await world.all_records(created["id"])}
    assert vanished in keys

    world.sandbox.clear_requests()
    response = await world.refresh(created["id"], full=True)
    assert response.status_code == 202
    await world.run_jobs()
    calls = world.requests(f"/v1/{ORG}/contacts")
    assert all("changesSince" not in c.query for c in calls)
    assert len(calls) == -(-len(books.records["contacts"]) // PAGE)
    keys = {i["key"] for i in await world.all_records(created["id"])}
    assert vanished not in keys
    source = await world.get(created["id"])
    assert source["progress"]["contacts"]["deleted_records"] == 1


async def test_scheduled_refreshes_are_enqueued_once_when_due(world: World) -> None:
    created = await world.created(data_types=["contacts"], refresh_minutes=5)
    on_demand = await world.created(data_types=["products"], refresh_minutes=None)
    await world.run_jobs()
    first = await world.get(created["id"])
    due_at = datetime.fromisoformat(first["next_refresh_at"])
    refreshed = datetime.fromisoformat(first["last_refreshed_at"])
    assert timedelta(minutes=4, seconds=59) < due_at - refreshed <= timedelta(minutes=5, seconds=1)
    assert (await world.get(on_demand["id"]))["next_refresh_at"] is None

    periodic = jobs.job_app.periodic_registry.periodic_tasks.values()
    assert any(p.periodic_id == "schedule_data_sources" and p.cron == "* * * * *" for p in periodic)
    sessionmaker = world.service.state.services.sessionmaker
    assert await tasks.enqueue_due(sessionmaker) == 0  # nothing is due yet
    await world.sql(
        "UPDATE data_sources SET next_refresh_at = now() - interval '1 minute' WHERE id = :id",
        id=created["id"],
    )
    # The periodic job, every minute, as a worker calls it (with the worker's services).
    worker = JobContext(
        app=jobs.job_app,
        job=Job(
            queue="housekeeping", lock=None, queueing_lock=None, task_name="data_sources.schedule"
        ),
        start_timestamp=0.0,
        abort_reason=lambda: None,
        additional_context=services.worker_context(world.service.state.services),
    )
    await tasks.schedule_data_sources(worker, timestamp=0)
    assert await tasks.enqueue_due(sessionmaker) == 0  # one waits already: not twice
    queued = await world.queued(created["id"])
    assert [job["args"]["reason"] for job in queued] == ["schedule"]
    assert await world.queued(on_demand["id"]) == []

    world.sandbox.clear_requests()
    await world.run_jobs()
    second = await world.get(created["id"])
    assert second["last_refreshed_at"] > first["last_refreshed_at"]
    assert datetime.fromisoformat(second["next_refresh_at"]) > datetime.now(UTC) + timedelta(
        minutes=4
    )
    assert all("changesSince" in c.query for c in world.requests(f"/v1/{ORG}/contacts"))


async def test_an_interrupted_import_resumes_where_it_stopped(world: World) -> None:
    created = await world.created(data_types=["contacts"], refresh_minutes=None)
    contacts = f"/v1/{ORG}/contacts"
    world.gate.hold = lambda r: r.url.path == contacts and r.url.params.get("page") == "3"
    # A worker stopping gives running jobs this long, then cancels them (as a killed one would).
    worker = asyncio.create_task(world.run_jobs(shutdown_graceful_timeout=0.1))
    await asyncio.wait_for(world.gate.held.wait(), timeout=20)

    midway = await world.get(created["id"])
    assert midway["status"] == "importing"
    assert midway["progress"]["contacts"] == {
        "state": "importing",
        "records": 3 * PAGE,
        "deleted_records": 0,
        "refreshed_at": None,
    }
    # Even on demand only, a run in flight has a deadline after which it is presumed lost.
    deadline = datetime.fromisoformat(midway["next_refresh_at"])
    started = datetime.fromisoformat(midway["started_at"])
    assert deadline - started == timedelta(minutes=60)
    worker.cancel()  # the worker dies in the middle of the fourth page
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(worker, timeout=10)
    world.sandbox.clear_requests()

    # Nobody presses anything: once the deadline passes, the schedule starts it again.
    await world.sql(
        "UPDATE data_sources SET next_refresh_at = now() - interval '1 second' WHERE id = :id",
        id=created["id"],
    )
    assert await tasks.enqueue_due(world.service.state.services.sessionmaker) == 1
    await world.run_jobs()

    pages = [c.query["page"] for c in world.requests(contacts)]
    total = len(world.sandbox.records(ORG, "contacts"))
    assert pages == [str(n) for n in range(3, -(-total // PAGE))]  # from the fourth page on
    source = await world.get(created["id"])
    assert source["status"] == "ready"
    assert source["next_refresh_at"] is None  # on demand only, and nothing is in flight
    assert source["progress"]["contacts"]["records"] == total
    keys = [i["key"] for i in await world.all_records(created["id"])]
    assert sorted(keys) == sorted(live(world.sandbox, "contacts"))


class BusyPacer:
    """Exports hold the organization's budget: background lanes get no slot."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self.asked: list[Lane] = []

    async def acquire(
        self, organization_id: int, lane: Lane = Lane.EXPORT, *, max_wait: float | None = None
    ) -> None:
        self.asked.append(lane)
        if lane.is_background:
            raise PacerBusy(organization_id, lane, self.retry_after)

    async def answered(self, claim: Claim) -> None:
        return None

    async def penalize(self, organization_id: int, seconds: float) -> None:
        return None


async def test_a_busy_budget_puts_the_import_off_without_failing(world: World) -> None:
    created = await world.created(data_types=["contacts", "products"])
    gateway = world.service.state.services.dinero
    real = gateway.pacer
    busy = BusyPacer(retry_after=42.0)
    gateway.pacer = busy
    try:
        await world.run_jobs()
    finally:
        gateway.pacer = real
    assert set(busy.asked) == {Lane.DATA_SOURCE}
    waiting = await world.get(created["id"])
    assert waiting["status"] == "importing"
    assert waiting["error"] is None
    retry_at = datetime.fromisoformat(waiting["retry_at"])
    assert timedelta(seconds=35) < retry_at - datetime.now(UTC) < timedelta(seconds=45)
    queued = await world.queued(created["id"])
    assert [job["args"]["reason"] for job in queued] == ["retry"]
    assert queued[0]["scheduled_at"] > datetime.now(UTC) + timedelta(seconds=30)
    assert world.sandbox.find_requests("GET", f"/v1/{ORG}/*") == []

    # The admin asks for it now: the waiting run is brought forward, not doubled.
    response = await world.refresh(created["id"])
    assert response.json()["status"] == "already_queued"
    await world.run_jobs()
    source = await world.get(created["id"])
    assert source["status"] == "ready"
    assert source["retry_at"] is None
    assert source["progress"]["contacts"]["records"] == len(live(world.sandbox, "contacts"))


async def test_dinero_trouble_is_retried_then_shown(world: World) -> None:
    created = await world.created(data_types=["products"])
    world.sandbox.add_fault(kind="error", status=503, method="GET", path=f"/v1/{ORG}/products")
    await world.run_jobs()
    waiting = await world.get(created["id"])
    assert waiting["status"] == "importing"
    assert waiting["error"]["code"] == "dinero_unavailable"
    assert waiting["retry_at"] is not None
    assert [job["args"]["reason"] for job in await world.queued(created["id"])] == ["retry"]

    world.sandbox.clear_faults()
    await world.refresh(created["id"])
    await world.run_jobs()
    source = await world.get(created["id"])
    assert source["status"] == "ready"
    assert source["error"] is None

    # A refusal no waiting can fix fails the run, with the reason and what was imported kept.
    await world.api.delete(
        f"/v1/companies/{world.company}/dinero/connection", headers=world.headers()
    )
    await world.refresh(created["id"])
    await world.run_jobs()
    failed = await world.get(created["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "not_connected"
    assert failed["records"] == source["records"]


async def test_entry_changes_are_read_in_windows_of_at_most_31_days(world: World) -> None:
    created = await world.created(data_types=["entries"], accounting_year=YEAR_2026)
    await world.run_jobs()
    # As if the last refresh was 70 days ago, and an entry was booked 40 days ago.
    await world.sql(
        "UPDATE data_source_types SET watermark = now() - interval '70 days' "
        "WHERE data_source_id = :id",
        id=created["id"],
    )
    late = book_entry(world.sandbox, date(2026, 9, 30), 4000, "75.00")
    for entry in world.sandbox.org(ORG).entries[-2:]:
        entry.created_at = datetime.now(UTC) - timedelta(days=40)
    world.sandbox.clear_requests()

    await world.refresh(created["id"])
    await world.run_jobs()

    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    windows = [
        (moment(c.query["changesFrom"]), moment(c.query["changesTo"]))
        for c in world.requests(f"/v1/{ORG}/entries/changes")
    ]
    assert len(windows) == 3
    assert all(end - start <= timedelta(days=31) for start, end in windows)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    now = datetime.now(UTC)
    assert now - windows[0][0] > timedelta(days=70)
    assert now - windows[-1][1] < timedelta(seconds=30)
    keys = {i["key"] for i in await world.all_records(created["id"])}
    assert late.guid in keys

"""Closed periods and refused bookings, against the stand-in Dinero: the admin's lock date holds
items back before any request, a year Dinero refuses as closed is remembered, so the year's other
items wait without earning Dinero's 400 again, until the admin reopens it and retries, and a
booking refused for a stale version is read again and booked once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from dinero_sandbox import vouchers
from dinero_sandbox.errors import validation_error
from sqlalchemy import select

from app.exports import runner
from app.exports.models import ClosedYear
from tests.conftest import bearer
from tests.preview.test_preview import expense_line, export, item, preview, settle, writes
from tests.sandboxed import PRO_ORG, Service, connected_company, read_item, service_fixture, shared

service = service_fixture(dinero_rate_limit_per_minute=10_000)


@pytest.fixture
async def company(service: Service) -> str:
    return await connected_company(service)


async def settings(service: Service, company: str) -> dict[str, Any]:
    answer = await service.client.get(
        f"/v1/companies/{company}/dinero/settings", headers=bearer(company, "member")
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def put_settings(service: Service, company: str, **values: Any) -> Any:
    """PUT the settings as they are, with `values` changed."""
    current = await settings(service, company)
    body = {
        name: current[name]
        for name in ("deposit_account", "out_of_pocket_account", "reimbursement_account")
    }
    return await service.client.put(
        f"/v1/companies/{company}/dinero/settings",
        json={**body, **values},
        headers=bearer(company),
    )


def ledger_requests(service: Service) -> list[str]:
    return [f"{r.method} {r.path}" for r in service.sandbox.find_requests("POST", "*/ledgeritems*")]


async def test_the_lock_date_holds_items_back_without_a_request_until_it_moves(
    service: Service, company: str
) -> None:
    answer = await put_settings(service, company, books_closed_through="2026-11-30")
    assert answer.status_code == 200, answer.text
    assert answer.json()["books_closed_through"] == "2026-11-30"
    card = item("closed-1", "card_expense", 5000, lines=[expense_line(2800, 5000)])
    reimbursement = item("closed-2", "reimbursement", 50000, date="2026-11-30")
    later = item("open-1", "reimbursement", 20000, date="2026-12-01")
    service.sandbox.clear_requests()

    previewed = await preview(service, company, card, reimbursement, later)
    assert [(p["outcome"], p.get("code")) for p in previewed] == [
        ("would_wait", "period_closed"),
        ("would_wait", "period_closed"),
        ("would_export", None),
    ]
    ids = [await export(service, company, body) for body in (card, reimbursement, later)]
    await settle(service, company)

    held = [await read_item(service, company, i) for i in ids[:2]]
    assert [(h["status"], h["waiting"]["code"]) for h in held] == [
        ("queued", "period_closed"),
        ("queued", "period_closed"),
    ]
    assert "2026-11-30" in held[0]["waiting"]["message"]
    assert (await read_item(service, company, ids[2]))["status"] == "booked"
    # Only the open item reached Dinero: one ledger item created and booked, no file or voucher
    # (its booking's status is asked by POST …/ledgeritems/status, a read).
    assert [w for w in writes(service) if not w.endswith("/status")] == [
        f"POST /v1.2/{PRO_ORG}/ledgeritems",
        f"POST /v1/{PRO_ORG}/ledgeritems/book",
    ]

    # Moving the lock date back lets them go (the PUT wakes the runner; settle runs it here).
    answer = await put_settings(service, company, books_closed_through="2026-10-31")
    assert answer.status_code == 200, answer.text
    await settle(service, company)
    statuses = [(await read_item(service, company, i))["status"] for i in ids]
    assert statuses == ["awaiting_approval", "booked", "booked"]


async def test_the_lock_date_is_kept_when_left_out_cleared_by_null_and_kept_in_history(
    service: Service, company: str
) -> None:
    assert (await settings(service, company))["books_closed_through"] is None
    began = datetime.now(UTC).isoformat()
    locked = await put_settings(service, company, books_closed_through="2025-12-31")
    assert locked.status_code == 200, locked.text

    kept = await put_settings(service, company)  # an older client: no lock date in the body
    assert kept.json()["books_closed_through"] == "2025-12-31"
    cleared = await put_settings(service, company, books_closed_through=None)
    assert cleared.json()["books_closed_through"] is None

    history = await service.client.get(
        f"/v1/companies/{company}/dinero/settings/history",
        params={"since": began},
        headers=bearer(company, "member"),
    )
    changes = [
        c["changes"]["books_closed_through"]
        for c in history.json()["items"]
        if c["setting"] == "books_closed_through"
    ]
    assert {"from": None, "to": "2025-12-31"} in changes
    assert {"from": "2025-12-31", "to": None} in changes


@pytest.mark.parametrize("value", ["31-12-2025", "2025-02-30", 20251231, "2025-12-31T00:00:00Z"])
async def test_a_lock_date_that_is_not_a_calendar_date_is_refused(
    service: Service, company: str, value: object
) -> None:
    answer = await put_settings(service, company, books_closed_through=value)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "validation_error"
    assert (await settings(service, company))["books_closed_through"] is None


async def test_a_year_dinero_refuses_as_closed_is_remembered_until_the_admin_retries(
    service: Service, company: str
) -> None:
    service.sandbox.lock_accounting_year(PRO_ORG, 2025)
    first = await export(service, company, item("y25-1", "reimbursement", 10000, date="2025-06-01"))
    open_one = await export(service, company, item("y26-1", "wallet_top_up", 30000))
    service.sandbox.clear_requests()
    await settle(service, company)

    waiting = await read_item(service, company, first)
    assert (waiting["status"], waiting["waiting"]["code"]) == (
        "exporting",
        "accounting_year_closed",
    )
    assert "closed" in waiting["waiting"]["message"]
    assert (await read_item(service, company, open_one))["status"] == "booked"
    # One booking call for both was refused (the whole call), then each went alone.
    books = service.sandbox.find_requests("POST", "*/ledgeritems/book")
    assert len(books) == 3
    years = (await settings(service, company))["closed_accounting_years"]
    assert [(y["first_day"], y["last_day"]) for y in years] == [("2025-01-01", "2025-12-31")]
    assert "2025" in years[0]["dinero_message"]

    # A second item of the closed year waits in the checks: no request for it at all.
    service.sandbox.clear_requests()
    second = await export(
        service, company, item("y25-2", "reimbursement", 20000, date="2025-12-31")
    )
    await settle(service, company)
    assert ledger_requests(service) == []
    assert (await read_item(service, company, second))["waiting"][
        "code"
    ] == "accounting_year_closed"
    (previewed,) = await preview(
        service, company, item("y25-3", "reimbursement", 100, date="2025-03-01")
    )
    assert previewed["code"] == "accounting_year_closed"

    # Reopened in Dinero: retrying one item forgets the refusal, and both go, each booked once.
    service.sandbox.lock_accounting_year(PRO_ORG, 2025, locked=False)
    retried = await service.client.post(
        f"/v1/companies/{company}/export-items/{second}/retry", headers=bearer(company)
    )
    assert retried.status_code == 202, retried.text
    async with shared(service).sessionmaker() as session:
        assert (await session.execute(select(ClosedYear))).scalars().all() == []
    await settle(service, company)
    assert [(await read_item(service, company, i))["status"] for i in (first, second)] == [
        "booked",
        "booked",
    ]
    booked = [e for e in service.sandbox.ledger_items(PRO_ORG) if e.status == "Booked"]
    assert sorted(e.voucher_date.isoformat() for e in booked if e.voucher_date.year == 2025) == [
        "2025-06-01",
        "2025-12-31",
    ]


async def test_a_voucher_dinero_refuses_for_its_date_waits_for_the_year_instead_of_failing(
    service: Service, company: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a Dinero that also refuses drafts dated in a closed year would answer (the stand-in
    # checks the year only when booking): the first creation is refused for its date.
    create = vouchers.create_purchase_voucher
    refusals = iter([True])

    def refusing_once(w: Any, model: Any) -> Any:
        if next(refusals, False):
            raise validation_error(
                {"VoucherDate": "The accounting year 2026 is closed"}, "Accounting year closed"
            )
        return create(w, model)

    monkeypatch.setattr(vouchers, "create_purchase_voucher", refusing_once)
    first = await export(
        service, company, item("v26-1", "card_expense", 5000, lines=[expense_line(2800, 5000)])
    )
    await settle(service, company)

    waiting = await read_item(service, company, first)
    assert (waiting["status"], waiting["waiting"]["code"]) == (
        "exporting",
        "accounting_year_closed",
    )
    assert len(service.sandbox.find_requests("POST", "*/vouchers/purchase")) == 1
    # Another expense of that year waits in the pre-flight: no file, no voucher request for it.
    service.sandbox.clear_requests()
    body = item("v26-2", "card_expense", 7000, lines=[expense_line(2800, 7000)])
    (previewed,) = await preview(service, company, body)
    assert previewed["code"] == "accounting_year_closed"
    second = await export(service, company, body)
    await settle(service, company)
    assert (await read_item(service, company, second))["waiting"][
        "code"
    ] == "accounting_year_closed"
    assert writes(service) == []

    service.sandbox.clear_requests()
    retried = await service.client.post(
        f"/v1/companies/{company}/export-items/{first}/retry", headers=bearer(company)
    )
    assert retried.status_code == 202, retried.text
    await settle(service, company)
    statuses = [(await read_item(service, company, i))["status"] for i in (first, second)]
    assert statuses == ["awaiting_approval", "awaiting_approval"]
    # The first one's file was not uploaded again: one upload (the second's), two vouchers.
    assert len(service.sandbox.find_requests("POST", "*/files")) == 1
    assert len(service.sandbox.find_requests("POST", "*/vouchers/purchase")) == 2


async def test_a_booking_refused_as_stale_reads_the_version_again_and_books_once(
    service: Service, company: str
) -> None:
    """Changed in the Kassekladde between our create and our booking: Dinero refuses the stale
    version (code 58); the runner reads the version again and books once, not failing it and
    not booking it again pass after pass."""
    item_id = await export(service, company, item("stale-1", "reimbursement", 10000))
    books = service.sandbox.org(PRO_ORG)

    edits = iter([True])

    async def edit_in_dinero(point: str) -> None:
        if point == "before_book" and next(edits, False):  # the first booking only
            for ledger_item in books.ledger_items.values():
                ledger_item.version = books.next_version()

    service.sandbox.clear_requests()
    await runner.run_company(shared(service), company, checkpoint=edit_in_dinero)
    await settle(service, company)

    assert (await read_item(service, company, item_id))["status"] == "booked"
    booking_calls = service.sandbox.find_requests("POST", "*/ledgeritems/book")
    assert [r.status for r in booking_calls] == [400, 200]
    assert len([i for i in service.sandbox.ledger_items(PRO_ORG) if i.status == "Booked"]) == 1


async def test_with_first_open_day_an_item_of_a_closed_period_is_posted_the_day_after(
    service: Service, company: str
) -> None:
    answer = await put_settings(
        service,
        company,
        books_closed_through="2026-11-30",
        closed_period_policy="first_open_day",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["closed_period_policy"] == "first_open_day"
    card = item("late-1", "card_expense", 5000, lines=[expense_line(2800, 5000)])
    late = item("late-2", "reimbursement", 20000, date="2026-11-20")
    service.sandbox.clear_requests()

    previewed = await preview(service, company, card, late)
    assert [p["posting"]["voucher_date"] for p in previewed] == ["2026-12-01", "2026-12-01"]
    assert previewed[0]["posting"]["lines"][0]["description"].startswith("bilagsdato 2026-11-03")
    ids = [await export(service, company, body) for body in (card, late)]
    await settle(service, company)

    (voucher,) = service.sandbox.find_requests("POST", "*/vouchers/purchase")
    (ledger,) = service.sandbox.find_requests("POST", "*/ledgeritems")
    assert voucher.json["VoucherDate"] == "2026-12-01"
    assert voucher.json["Lines"][0]["Description"].startswith("bilagsdato 2026-11-03 · ")
    sent = ledger.json if isinstance(ledger.json, list) else [ledger.json]
    assert [entry["VoucherDate"] for entry in sent] == ["2026-12-01"]
    exported = [await read_item(service, company, i) for i in ids]
    assert [e["status"] for e in exported] == ["awaiting_approval", "booked"]
    assert [e["date"] for e in exported] == ["2026-11-03", "2026-11-20"]  # their own dates

    # Left out of a PUT, the policy stays; an unknown one is refused.
    assert (await put_settings(service, company)).json()["closed_period_policy"] == "first_open_day"
    refused = await put_settings(service, company, closed_period_policy="later")
    assert refused.status_code == 422, refused.text

"""Follow-up cost: following 1,000 drafts in the stand-in Dinero within 10 % of the budget.

    ./dev run python -m bench.follow_up_cost [--drafts 1000 --approved 100 --deleted 50
        --edited 20 --limit 100 --share 0.10 --seed 7]

A fresh embedded PostgreSQL is migrated to head; the service talks to an in-process sandbox. A
company is connected with the demo API key, `--drafts` card expenses are exported as drafts
(the real runner, unpaced), then the accountant approves, deletes and edits some of them.

Follow-up cycles then run as the schedule runs them, one a minute, on a simulated clock through
the real pacing rules (an in-memory pacer with `--limit` requests a minute and the follow-up
share `--share`): each cycle gets only the FOLLOW_UP lane's slots (10 a minute by default) and
stops at the first request that would have to wait. The naive way, one GET per voucher in
turn, is run through the same rules. Printed: the requests of each approach's cycles, and the
cycles (minutes) until every approval, deletion and edit is noticed. Then a steady-state cycle
(every draft read in the last 30 minutes; a few more approvals and deletions): what one cycle
costs with 1,000 drafts waiting, against 1,000 GETs for the naive pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import httpx
from dinero_sandbox import Sandbox, SandboxConfig, create_sandbox_app
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select, update

from app.auth import issue_token
from app.chart.sync import sync_chart
from app.connection.models import DineroConnection
from app.dinero.errors import DineroNotFound
from app.dinero.pacing import InMemoryPacer, Lane, NoopPacer, PacerBusy
from app.exports import runner
from app.exports.models import Export, ExportItem, ItemStatus, ItemType, Step
from app.follow_up import cycle
from app.logging import configure_logging
from app.main import create_app
from app.runtime import resolve
from app.services import Services
from bench.common import JWT_SECRET, service_settings, temp_database

ORG = 100001
API_KEY = "sandbox-api-key-100001"
DINERO = "http://dinero.bench"
COMPANY = "bench-follow-up"
CARD = 55030
MAX_CYCLES = 400
MINUTE = 61.0
"""Simulated time between cycles: the schedule's minute (plus the pacer's margin)."""


class SimulatedClock:
    """The pacer's clock: moves only when a cycle ends or a request sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


@dataclass
class Noticed:
    """The cycle (1-based) in which each kind of change was first fully noticed."""

    approvals: int | None = None
    deletions: int | None = None
    edits: int | None = None
    requests: int = 0
    requests_until_approvals_and_deletions: int | None = None
    first_cycle: Counter[str] = field(default_factory=Counter)
    cycles: int = 0


@contextlib.asynccontextmanager
async def _service(url: str, limit: int, share: float) -> AsyncIterator[tuple[FastAPI, Sandbox]]:
    # The stand-in's own 100/min limit is off: the export phase is unpaced (not measured), and
    # the follow-up phase is paced by the simulated pacer below.
    sandbox_app = create_sandbox_app(SandboxConfig(rate_limit_per_minute=0))
    settings = service_settings(
        url, DINERO, dinero_rate_limit_per_minute=limit, dinero_follow_up_share=share
    )
    runtime = resolve(settings, database_url=None, public_url="http://bench")
    app = create_app(
        runtime,
        dinero_transport=httpx.ASGITransport(app=sandbox_app),
        mount_sandbox=False,
        open_job_queue=True,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            headers = {
                "Authorization": "Bearer "
                + issue_token(secret=SecretStr(JWT_SECRET), company_id=COMPANY, role="admin")
            }
            connected = await client.put(
                f"/v1/companies/{COMPANY}/dinero/connection",
                json={"organization_id": ORG, "method": "api_key", "api_key": API_KEY},
                headers=headers,
            )
            connected.raise_for_status()
            services: Services = app.state.services
            services.dinero.pacer = NoopPacer()
            await sync_chart(services, COMPANY)
            mapped = await client.put(
                f"/v1/companies/{COMPANY}/dinero/settings",
                json={"deposit_account": CARD},
                headers=headers,
            )
            mapped.raise_for_status()
            yield app, sandbox_app.state.sandbox


async def _export_drafts(services: Services, count: int) -> list[uuid.UUID]:
    """`count` card expenses stored as intake stores them, then exported by the runner."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with services.sessionmaker() as session, session.begin():
        export = Export(
            company_id=COMPANY,
            source="api",
            created_at=datetime.now(UTC),
            item_ids=[str(i) for i in ids],
        )
        session.add(export)
        await session.flush()
        for n, item_id in enumerate(ids):
            amount = 10_000 + n
            session.add(
                ExportItem(
                    id=item_id,
                    company_id=COMPANY,
                    export_id=export.id,
                    external_id=f"exp_{n:05d}",
                    type=ItemType.CARD_EXPENSE,
                    status=ItemStatus.QUEUED,
                    step=Step.NEW,
                    voucher_date=date(2026, 11, 3),
                    description="Taxa Nord",
                    currency="DKK",
                    amount_minor=amount,
                    dkk_amount_minor=amount,
                    lines=[
                        {
                            "category_id": None,
                            "account_number": 2800,
                            "tax_code": "I25",
                            "amount": amount,
                            "dkk_amount": amount,
                            "description": None,
                        }
                    ],
                    employee={"id": "emp-1", "name": "Mette Sørensen"},
                    receipts=[],
                )
            )
    while True:
        result = await runner.run_company(services, COMPANY)
        if result.reschedule_in is None:
            break
    return ids


async def _guids(services: Services, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem.id, ExportItem.dinero_guid).where(ExportItem.id.in_(ids))
        )
        return {item_id: str(guid) for item_id, guid in rows.tuples() if guid is not None}


async def _item_state(services: Services) -> dict[uuid.UUID, tuple[ItemStatus, bool]]:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem.id, ExportItem.status, ExportItem.dinero_changes).where(
                ExportItem.company_id == COMPANY
            )
        )
        return {i: (status, changes is not None) for i, status, changes in rows.tuples()}


def _purpose(path: str) -> str:
    if "/entries/changes" in path:
        return "entries"
    if path.endswith("/files"):
        return "files"
    if "/vouchers/" in path:
        return "reads"
    return "other"


clock = SimulatedClock()


async def _run_naive(
    services: Services,
    order: list[tuple[uuid.UUID, str]],
    approved: set[uuid.UUID],
    deleted: set[uuid.UUID],
    edited: set[uuid.UUID],
    timestamps: dict[uuid.UUID, str | None],
) -> Noticed:
    """One GET per voucher in turn, as far as the same FOLLOW_UP lane allows each minute."""
    async with services.sessionmaker() as session:
        connection = (
            await session.execute(
                select(DineroConnection).where(DineroConnection.company_id == COMPANY)
            )
        ).scalar_one()
    client = services.dinero.client_for(connection, lane=Lane.FOLLOW_UP, max_wait=1.0)
    noticed = Noticed()
    seen_approved: set[uuid.UUID] = set()
    seen_deleted: set[uuid.UUID] = set()
    seen_edited: set[uuid.UUID] = set()
    position = 0
    for number in range(1, MAX_CYCLES + 1):
        used = 0
        while position < len(order):
            item_id, guid = order[position]
            try:
                voucher = await client.get_purchase_voucher(uuid.UUID(guid))
            except DineroNotFound:
                seen_deleted.add(item_id)
            except PacerBusy:
                break
            else:
                if not voucher.is_draft:
                    seen_approved.add(item_id)
                elif voucher.timestamp != timestamps[item_id]:
                    seen_edited.add(item_id)
            used += 1
            position += 1
        noticed.requests += used
        if number == 1:
            noticed.first_cycle = Counter({"reads": used})
        if noticed.approvals is None and approved <= seen_approved:
            noticed.approvals = number
        if noticed.deletions is None and deleted <= seen_deleted:
            noticed.deletions = number
        if (
            noticed.requests_until_approvals_and_deletions is None
            and noticed.approvals is not None
            and noticed.deletions is not None
        ):
            noticed.requests_until_approvals_and_deletions = noticed.requests
        if noticed.edits is None and edited <= seen_edited:
            noticed.edits = number
        noticed.cycles = number
        if position >= len(order):
            break
        clock.now += MINUTE
    return noticed


def _row(label: str, ours: object, naive: object) -> None:
    print(f"  {label:52s} {ours!s:>22s} {naive!s:>22s}")


async def _run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    with temp_database("bench-follow-up-") as db:
        async with _service(db.url, args.limit, args.share) as (app, sandbox):
            services: Services = app.state.services
            started = time.perf_counter()
            ids = await _export_drafts(services, args.drafts)
            guids = await _guids(services, ids)
            print(
                f"exported {len(guids)} drafts in {time.perf_counter() - started:.1f} s "
                "(unpaced, not part of the measure)"
            )
            async with services.sessionmaker() as session:
                rows = await session.execute(
                    select(ExportItem.id, ExportItem.dinero_timestamp).where(ExportItem.id.in_(ids))
                )
                stamps = {item_id: stamp for item_id, stamp in rows.tuples()}
            chosen = rng.sample(ids, args.approved + args.deleted + args.edited)
            approved = set(chosen[: args.approved])
            deleted = set(chosen[args.approved : args.approved + args.deleted])
            edited = set(chosen[args.approved + args.deleted :])
            for item_id in approved:
                sandbox.approve_purchase_voucher(ORG, guids[item_id])
            for item_id in deleted:
                sandbox.delete_purchase_voucher(ORG, guids[item_id])
            for item_id in edited:
                sandbox.edit_purchase_voucher(ORG, guids[item_id], line=0, account_number=2900)

            quota = max(1, int(args.share * args.limit + 1e-9))
            services.dinero.pacer = InMemoryPacer(
                args.limit, follow_up_share=args.share, clock=clock, sleep=clock.sleep
            )
            order = [(i, guids[i]) for i in ids]
            naive = await _run_naive(services, order, approved, deleted, edited, stamps)

            services.dinero.pacer = InMemoryPacer(
                args.limit, follow_up_share=args.share, clock=clock, sleep=clock.sleep
            )
            clock.now += 10 * MINUTE
            ours = await _run_follow_up_cycles(services, sandbox, approved, deleted, edited)

            print()
            print(
                f"following {len(guids)} drafts ({args.approved} approved, {args.deleted} "
                f"deleted, {args.edited} edited in Dinero); budget {args.limit}/min, follow-up "
                f"share {args.share:.0%} = {quota} requests/min; one cycle a minute"
            )
            print()
            _row("", "follow-up (service)", "naive (GET each)")
            first = ", ".join(f"{k} {v}" for k, v in sorted(ours.first_cycle.items()))
            _row("requests in the first cycle", f"{sum(ours.first_cycle.values())}", quota)
            print(f"  {'':52s} {'(' + first + ')':>22s}")
            _row("cycles until every approval is noticed", ours.approvals, naive.approvals)
            _row("cycles until every deletion is noticed", ours.deletions, naive.deletions)
            _row("cycles until every edit is noticed", ours.edits, naive.edits)
            _row(
                "requests until approvals and deletions noticed",
                ours.requests_until_approvals_and_deletions,
                naive.requests_until_approvals_and_deletions,
            )
            _row("requests until everything noticed", ours.requests, naive.requests)

            # Steady state: go on until every draft was read in the last 30 minutes (a cycle
            # that is not cut short by the budget), then a few more changes.
            for _ in range(MAX_CYCLES):
                clock.now += MINUTE
                if (await cycle.run_company(services, COMPANY)).stopped is None:
                    break
            state = await _item_state(services)
            waiting = [i for i in ids if state[i][0] == ItemStatus.AWAITING_APPROVAL]
            more = rng.sample(waiting, 15)
            for item_id in more[:10]:
                sandbox.approve_purchase_voucher(ORG, guids[item_id])
            for item_id in more[10:]:
                sandbox.delete_purchase_voucher(ORG, guids[item_id])
            clock.now += 10 * MINUTE
            sandbox.clear_requests()
            result = await cycle.run_company(services, COMPANY)
            used = Counter(_purpose(r.path) for r in sandbox.requests)
            print()
            print(
                f"steady state, {len(waiting)} drafts waiting, then 10 approved and 5 deleted: "
                f"one cycle used {sum(used.values())} requests "
                f"({', '.join(f'{k} {v}' for k, v in sorted(used.items()))}) and noticed "
                f"{result.booked} approvals, {result.deleted} deletions; "
                f"the naive pass: {len(waiting)} requests ({len(waiting) / quota:.0f} minutes "
                "of the share)"
            )
            missed = result.booked != 10 or result.deleted != 5
            failed = int(
                missed
                or ours.approvals is None
                or ours.deletions is None
                or (naive.requests_until_approvals_and_deletions or 0)
                < (ours.requests_until_approvals_and_deletions or 0)
            )
            print("target met" if not failed else "TARGET MISSED")
            return failed


async def _run_follow_up_cycles(
    services: Services,
    sandbox: Sandbox,
    approved: set[uuid.UUID],
    deleted: set[uuid.UUID],
    edited: set[uuid.UUID],
) -> Noticed:
    # Each cycle starts a simulated minute after the previous one; nothing else waits.
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(ExportItem)
            .where(ExportItem.company_id == COMPANY)
            .values(follow_up_checked_at=None)
        )
    noticed = Noticed()
    for number in range(1, MAX_CYCLES + 1):
        sandbox.clear_requests()
        await cycle.run_company(services, COMPANY)
        used = [_purpose(r.path) for r in sandbox.requests]
        noticed.requests += len(used)
        if number == 1:
            noticed.first_cycle = Counter(used)
        state = await _item_state(services)
        if noticed.approvals is None and all(state[i][0] == ItemStatus.BOOKED for i in approved):
            noticed.approvals = number
        if noticed.deletions is None and all(
            state[i][0] == ItemStatus.DELETED_IN_DINERO for i in deleted
        ):
            noticed.deletions = number
        if (
            noticed.requests_until_approvals_and_deletions is None
            and noticed.approvals is not None
            and noticed.deletions is not None
        ):
            noticed.requests_until_approvals_and_deletions = noticed.requests
        if noticed.edits is None and all(state[i][1] for i in edited):
            noticed.edits = number
        noticed.cycles = number
        if None not in (noticed.approvals, noticed.deletions, noticed.edits):
            break
        clock.now += MINUTE
    return noticed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--drafts", type=int, default=1000)
    parser.add_argument("--approved", type=int, default=100)
    parser.add_argument("--deleted", type=int, default=50)
    parser.add_argument("--edited", type=int, default=20)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--share", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    raise SystemExit(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()

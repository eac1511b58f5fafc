"""The export runner: takes a company's due items to Dinero, exactly once.

One runner per company at a time (a procrastinate job with a per-company lock). Each pass:

1. checks what every due item needs (connection, mappings, category, tax code, accounting year);
   an item that cannot go yet *waits* with a reason a person can act on, and goes by itself on a
   later pass once that is fixed (settings, syncs and reconnects kick the runner);
2. ledger items (reimbursements, top-ups) go to the Kassekladde in batches, are booked, and are
   followed until Dinero says `Booked`;
3. expenses become draft vouchers, one item at a time: receipt file, upload, create.

Exactly once: before each call to Dinero the item's step is committed as `…_SENT` (the intent);
Dinero's answer is committed as the next step. No call is made inside a transaction. An item
found in a `…_SENT` step is looked up in Dinero (file archive by our file name, `fileguid`, ledger
`status` by our own id) before anything is sent again. Transient failures back off per item;
Dinero's validation errors fail the item at once with Dinero's message kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.orm import undefer

from app.chart.models import NO_VAT, Category, ChartSync, CompanySettings, DineroAccount
from app.chart.service import (
    EXPORT_NEEDS,
    effective_accounts,
    list_categories,
    present_tax_codes,
    usable_deposit_accounts,
)
from app.connection.gateway import NotConnected, ReauthRequired
from app.connection.models import DineroConnection, get_connection
from app.dinero.client import DineroClient, FileStatus
from app.dinero.errors import (
    DineroApiError,
    DineroError,
    DineroNotFound,
    DineroOutcomeUnknown,
    DineroRateLimited,
    DineroTransportError,
)
from app.dinero.models import (
    ArchivedFile,
    LedgerItem,
    LedgerItemLine,
    LedgerItemRef,
    LedgerItemStatus,
    ManualVoucherCreate,
    ManualVoucherLine,
    PurchaseVoucherCreate,
    PurchaseVoucherLine,
)
from app.dinero.pacing import Lane, PacerBusy
from app.exports.models import ExportItem, ItemStatus, ItemType, ReceiptBlob, Step
from app.exports.note import receipt_note
from app.follow_up.drafts import baseline
from app.receipts import ReceiptBlob as Blob
from app.receipts import (
    ReceiptError,
    ReceiptFetcher,
    prepare_receipts,
)
from app.services import Services

log = structlog.get_logger(__name__)

LEDGER_BATCH = 1000
"""Dinero takes up to 1000 ledger items per call."""
PASS_ITEMS = 200
TIME_SLICE_SECONDS = 45.0
"""A runner yields its worker after this long, so no company starves the others."""
BOOKING_POLL_SECONDS = 2.0
PACER_MAX_WAIT_SECONDS = 5.0
RATE_LIMIT_PAUSE_SECONDS = 60.0
MAX_BACKOFF = timedelta(minutes=30)
UPLOAD_LOOKBACK = timedelta(days=1)
ARCHIVE_PAGE = 1000

PURCHASE = "purchase_voucher"
MANUAL = "manual_voucher"
LEDGER = "ledger_item"

# Test hook: called at each named point between steps; a test raises there to "kill" the worker.
Checkpoint = Callable[[str], Awaitable[None]]
checkpoint_hook: Checkpoint | None = None


async def checkpoint(name: str) -> None:
    if checkpoint_hook is not None:
        await checkpoint_hook(name)


class Wait(Exception):
    """The item cannot go yet; a person can fix the reason, then it goes by itself."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Fail(Exception):
    """The item cannot go as sent; it fails with this reason (retry after fixing the source)."""

    def __init__(self, code: str, message: str, dinero_message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.dinero_message = dinero_message


@dataclass
class Context:
    """What a pass knows about the company, read once."""

    services: Services
    company_id: str
    connection: DineroConnection
    accounts: dict[str, int | None]
    categories: dict[uuid.UUID, Category]
    purchase_accounts: set[int]
    deposit_accounts: set[int]
    tax_codes: set[str]
    years: list[tuple[date, date]]
    synced: bool
    client: DineroClient | None = None
    deadline: float = 0.0
    reschedule_in: float | None = None
    paused: bool = False
    stats: dict[str, int] = field(default_factory=dict)

    def later(self, seconds: float) -> None:
        if self.reschedule_in is None or seconds < self.reschedule_in:
            self.reschedule_in = seconds

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


@dataclass
class RunResult:
    stats: dict[str, int]
    reschedule_in: float | None


# --- persistence -------------------------------------------------------------------------------


async def save(services: Services, item: ExportItem, **values: Any) -> None:
    """Commit changes to one item at once (its own short transaction) and mirror them."""
    values.setdefault("updated_at", datetime.now(UTC))
    async with services.sessionmaker() as session, session.begin():
        await session.execute(update(ExportItem).where(ExportItem.id == item.id).values(**values))
    for key, value in values.items():
        setattr(item, key, value)


async def _load_context(services: Services, company_id: str) -> Context | None:
    async with services.sessionmaker() as session:
        connection = await get_connection(session=session, company_id=company_id)
        if connection is None:
            return None
        settings = await session.get(CompanySettings, company_id) or CompanySettings(
            company_id=company_id
        )
        categories = {c.id: c for c in await list_categories(session, company_id)}
        purchase = set(
            (
                await session.execute(
                    select(DineroAccount.account_number).where(
                        DineroAccount.company_id == company_id,
                        DineroAccount.is_purchase,
                        DineroAccount.present,
                        DineroAccount.hidden_in_dinero.is_(False),
                    )
                )
            ).scalars()
        )
        deposit = await usable_deposit_accounts(session, company_id)
        codes = {tax.code for tax in await present_tax_codes(session, company_id)}
        sync = await session.get(ChartSync, company_id)
        years = [
            (date.fromisoformat(y["from"]), date.fromisoformat(y["to"]))
            for y in (sync.accounting_years if sync else [])
        ]
    return Context(
        services=services,
        company_id=company_id,
        connection=connection,
        accounts=effective_accounts(settings),
        categories=categories,
        purchase_accounts=purchase,
        deposit_accounts=deposit,
        tax_codes=codes,
        years=years,
        synced=sync is not None and sync.succeeded_at is not None,
    )


async def _due_items(services: Services, company_id: str) -> list[ExportItem]:
    now = datetime.now(UTC)
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem)
            .where(
                ExportItem.company_id == company_id,
                ExportItem.status.in_([ItemStatus.QUEUED, ItemStatus.EXPORTING]),
                or_(ExportItem.next_attempt_at.is_(None), ExportItem.next_attempt_at <= now),
            )
            .order_by(ExportItem.created_at, ExportItem.id)
            .limit(PASS_ITEMS)
        )
        return list(rows.scalars())


async def _earliest_retry(services: Services, company_id: str) -> datetime | None:
    async with services.sessionmaker() as session:
        rows = await session.execute(
            select(ExportItem.next_attempt_at)
            .where(
                ExportItem.company_id == company_id,
                ExportItem.status.in_([ItemStatus.QUEUED, ItemStatus.EXPORTING]),
                ExportItem.next_attempt_at.is_not(None),
            )
            .order_by(ExportItem.next_attempt_at)
            .limit(1)
        )
        return rows.scalar_one_or_none()


# --- the pass ------------------------------------------------------------------------------------


async def run_company(services: Services, company_id: str) -> RunResult:
    """One pass over the company's due items; reschedules itself while work remains."""
    from app.exports.tasks import schedule_run
    from app.outbox.tasks import kick_delivery

    started = time.monotonic()
    ctx = await _load_context(services, company_id)
    if ctx is None:
        return RunResult(stats={}, reschedule_in=None)
    ctx.deadline = started + TIME_SLICE_SECONDS
    items = await _due_items(services, company_id)
    if items:
        await _run_items(ctx, items)
    if len(items) == PASS_ITEMS:
        ctx.later(0)  # more are due than one pass takes
    retry_at = await _earliest_retry(services, company_id)
    if retry_at is not None:
        ctx.later(max((retry_at - datetime.now(UTC)).total_seconds(), 0))
    if ctx.reschedule_in is not None:
        await schedule_run(services, company_id, ctx.reschedule_in)
    if items:
        await kick_delivery(services)  # tell the platform what changed (app/outbox)
    log.info("export_pass", company_id=company_id, items=len(items), **ctx.stats)
    return RunResult(stats=ctx.stats, reschedule_in=ctx.reschedule_in)


async def _run_items(ctx: Context, items: list[ExportItem]) -> None:
    try:
        ctx.client = _client(ctx)
    except (ReauthRequired, NotConnected) as exc:
        await _wait_all(ctx, items, _connection_wait(exc))
        return
    ledger: list[ExportItem] = []
    vouchers: list[ExportItem] = []
    for item in items:
        try:
            _check(ctx, item)
        except Wait as wait:
            await _set_waiting(ctx, item, wait)
            continue
        except Fail as fail:
            await _fail(ctx, item, fail)
            continue
        (vouchers if item.type.is_expense else ledger).append(item)
    try:
        if ledger:
            await _ledger_pass(ctx, ledger)
        for item in vouchers:
            if ctx.paused:
                break  # Dinero said 429: the organization waits, the items keep their place
            if time.monotonic() > ctx.deadline:
                ctx.later(0)
                break
            await _voucher_item(ctx, item)
    except (ReauthRequired, NotConnected) as exc:
        pending = [i for i in items if not i.status.settled]
        await _wait_all(ctx, pending, _connection_wait(exc))
    except PacerBusy as busy:
        ctx.later(busy.retry_after)


def _client(ctx: Context) -> DineroClient:
    # A full budget ends the pass (PacerBusy) instead of holding a worker other companies need.
    return ctx.services.dinero.client_for(
        ctx.connection, lane=Lane.EXPORT, max_wait=PACER_MAX_WAIT_SECONDS
    )


def _connection_wait(exc: ReauthRequired | NotConnected) -> Wait:
    if isinstance(exc, ReauthRequired):
        return Wait(
            "reconnect_dinero", "Dinero no longer accepts the connection: reconnect Dinero."
        )
    return Wait("connect_dinero", "Dinero is not connected: connect Dinero.")


async def _wait_all(ctx: Context, items: Sequence[ExportItem], wait: Wait) -> None:
    for item in items:
        await _set_waiting(ctx, item, wait)


async def _set_waiting(ctx: Context, item: ExportItem, wait: Wait) -> None:
    ctx.count("waiting")
    if item.waiting_code == wait.code and item.waiting_message == wait.message:
        return
    await save(
        ctx.services,
        item,
        status=ItemStatus.QUEUED if item.step == Step.NEW else ItemStatus.EXPORTING,
        waiting_code=wait.code,
        waiting_message=wait.message,
    )


async def _fail(ctx: Context, item: ExportItem, fail: Fail) -> None:
    ctx.count("failed")
    log.warning("export_item_failed", item_id=str(item.id), code=fail.code, reason=fail.message)
    await save(
        ctx.services,
        item,
        status=ItemStatus.FAILED,
        waiting_code=None,
        waiting_message=None,
        failure_code=fail.code,
        failure_message=fail.message,
        dinero_message=fail.dinero_message,
        next_attempt_at=None,
    )


async def _transient(ctx: Context, item: ExportItem, exc: Exception, *, count: bool = True) -> None:
    """Try again later with backoff; a 429 does not count as an attempt."""
    attempts = item.attempts + (1 if count else 0)
    delay = min(timedelta(seconds=5 * 2 ** min(attempts, 12)), MAX_BACKOFF)
    if isinstance(exc, DineroRateLimited):
        delay = timedelta(seconds=RATE_LIMIT_PAUSE_SECONDS)
        ctx.paused = True
        ctx.later(RATE_LIMIT_PAUSE_SECONDS)
    ctx.count("retry_later")
    log.info(
        "export_item_retry_later", item_id=str(item.id), delay=delay.total_seconds(), error=str(exc)
    )
    if isinstance(exc, ReceiptError):
        # The receipt host failed, not Dinero: say so (its message names the host).
        waiting_code, waiting_message = (
            "receipt_host_unavailable",
            f"The receipt could not be downloaded; trying again shortly ({exc.message})",
        )
    else:
        waiting_code, waiting_message = (
            "dinero_unavailable",
            f"Dinero did not answer as expected; trying again shortly ({exc}).",
        )
    await save(
        ctx.services,
        item,
        attempts=attempts,
        next_attempt_at=datetime.now(UTC) + delay,
        failure_message=None,
        waiting_code=waiting_code,
        waiting_message=waiting_message,
    )


def _dinero_failure(exc: DineroApiError) -> Fail:
    message = exc.message or str(exc)
    fields = "; ".join(f"{k}: {v}" for k, v in exc.validation_errors.items())
    return Fail(
        "dinero_rejected",
        f"Dinero refused the export: {message}" + (f" ({fields})" if fields else ""),
        dinero_message=message + (f" ({fields})" if fields else ""),
    )


# --- checks before sending -----------------------------------------------------------------


def _check(ctx: Context, item: ExportItem) -> None:
    """Everything that must hold before Dinero hears of the item (raises Wait or Fail)."""
    if item.step != Step.NEW:
        return  # already under way: finish it with what was decided then
    if not ctx.synced:
        raise Wait("chart_not_synced", "Waiting for the chart of accounts to sync from Dinero.")
    for name in EXPORT_NEEDS[item.type.value]:
        number = ctx.accounts[name]
        label = name.replace("_", " ").replace(" account", "")
        if number is None:
            raise Wait("mapping_missing", f"Map {_article(label)} {label} account in the settings.")
        if number not in ctx.deposit_accounts:
            raise Wait(
                "mapping_unavailable",
                f"The {label} account {number} is hidden in or gone from Dinero: "
                "choose another in the settings.",
            )
    if not any(start <= item.voucher_date <= end for start, end in ctx.years):
        raise Wait(
            "accounting_year_missing",
            f"Dinero has no open accounting year for {item.voucher_date.isoformat()}: "
            "create it in Dinero (Indstillinger > Regnskabsår), then sync.",
        )
    if item.type.is_expense:
        for line in item.lines:
            _resolve_line(ctx, line)


def _article(label: str) -> str:
    return "an" if label[:1] in "aeiou" else "a"


def _resolve_line(ctx: Context, line: dict[str, Any]) -> tuple[int, str | None]:
    """The account number and VAT code of an expense line."""
    tax_code: str | None = line.get("tax_code")
    if line.get("category_id"):
        category = ctx.categories.get(uuid.UUID(str(line["category_id"])))
        if category is None:
            raise Fail("category_unknown", "The expense's category does not exist.")
        if not category.active:
            raise Wait(
                "category_inactive",
                f"Category {category.name or category.account_name} "
                f"(account {category.account_number}) is hidden in or gone from Dinero: "
                "show the account in Dinero or recategorize the expense.",
            )
        account = category.account_number
        tax_code = tax_code or category.tax_code
    else:
        account = int(line["account_number"])
        if account not in ctx.purchase_accounts:
            raise Wait(
                "account_unavailable",
                f"Account {account} is not an expense account in Dinero: "
                "use an account between 2000 and 9399 that is not hidden.",
            )
    if tax_code is not None and tax_code not in ctx.tax_codes:
        raise Wait(
            "tax_code_unknown",
            f"Tax code {tax_code} is not a VAT type in Dinero: use another or add it in Dinero.",
        )
    return account, tax_code


def _money(minor: int) -> Decimal:
    return (Decimal(minor) / 100).quantize(Decimal("0.01"))


def _reference(item: ExportItem) -> str:
    return f"bridge:{item.id}"


def _text(item: ExportItem, line: dict[str, Any] | None = None) -> str:
    parts = [p for p in ((line or {}).get("description") or item.description, _employee(item)) if p]
    return " · ".join(parts)[:250] or item.external_id[:250]


def _employee(item: ExportItem) -> str | None:
    name = (item.employee or {}).get("name")
    return str(name) if name else None


# --- vouchers (expenses and refunds) -------------------------------------------------------


def _paid_from(ctx: Context, item: ExportItem) -> int:
    name = "deposit_account" if item.type == ItemType.CARD_EXPENSE else "out_of_pocket_account"
    number = ctx.accounts[name]
    assert number is not None  # checked before
    return number


def _is_refund(item: ExportItem) -> bool:
    return item.dkk_amount_minor < 0


async def _voucher_item(ctx: Context, item: ExportItem) -> None:
    assert ctx.client is not None
    client = ctx.client
    # Written together with the next step, not in a commit of their own (fewer round trips).
    pending: dict[str, Any] = {}
    if item.status == ItemStatus.QUEUED or item.waiting_code:
        pending = {"status": ItemStatus.EXPORTING, "waiting_code": None, "waiting_message": None}
    try:
        if item.step in (Step.NEW, Step.UPLOAD_SENT) and item.dinero_file_guid is None:
            pending = await _ensure_file(ctx, client, item, pending)
        if item.step == Step.CREATE_SENT and await _find_voucher(ctx, client, item):
            return
        if item.step in (Step.NEW, Step.UPLOADED, Step.UPLOAD_SENT, Step.CREATE_SENT):
            await _create_voucher(ctx, client, item, pending)
    except Fail as fail:
        await _fail(ctx, item, fail)
    except ReceiptError as exc:
        if exc.transient:
            await _transient(ctx, item, exc)
        else:
            await _fail(ctx, item, Fail(exc.code, exc.message))
    except DineroOutcomeUnknown as exc:
        await _transient(ctx, item, exc)  # the step says …_SENT: the next try looks first
    except DineroApiError as exc:
        if exc.transient:
            await _transient(ctx, item, exc, count=not isinstance(exc, DineroRateLimited))
        else:
            await _fail(ctx, item, _dinero_failure(exc))
    except DineroError as exc:
        await _transient(ctx, item, exc)


async def _prepared_file(
    ctx: Context, item: ExportItem, pending: dict[str, Any]
) -> tuple[bytes, str, str]:
    """The one file for the voucher: the receipts combined, or a note when there is none.

    A newly prepared file is added to `pending`, to be stored with the upload's intent.
    """
    if item.receipt_sha256 is not None:
        async with ctx.services.sessionmaker() as session:
            stored = (
                await session.execute(
                    select(ExportItem)
                    .options(undefer(ExportItem.receipt_file))
                    .where(ExportItem.id == item.id)
                )
            ).scalar_one()
            assert stored.receipt_file is not None
            assert stored.receipt_filename is not None
            assert stored.receipt_content_type is not None
            return stored.receipt_file, stored.receipt_filename, stored.receipt_content_type
    blobs = await receipt_blobs(ctx.services, item)
    base = f"{safe_name(item.external_id)}-{item.id.hex[:8]}"
    if blobs:
        prepared = await asyncio.to_thread(prepare_receipts, blobs, base_name=base)
        content, content_type = prepared.content, prepared.content_type
        extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(
            content_type, "pdf"
        )
        sha = prepared.sha256
    else:
        content = await asyncio.to_thread(receipt_note, item)
        content_type, extension = "image/png", "png"
        sha = hashlib.sha256(content).hexdigest()
    filename = f"{base}.{extension}"
    pending.update(
        receipt_file=content,
        receipt_filename=filename,
        receipt_content_type=content_type,
        receipt_sha256=sha,
    )
    return content, filename, content_type


def safe_name(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
    return cleaned.strip("-")[:40] or "expense"


async def receipt_blobs(services: Services, item: ExportItem) -> list[Blob]:
    """The item's receipts as bytes: inline ones from the database, links downloaded."""
    blobs: list[Blob] = []
    fetcher: ReceiptFetcher | None = None
    inline: dict[uuid.UUID, bytes] = {}
    blob_ids = [uuid.UUID(r["blob_id"]) for r in item.receipts if r.get("blob_id")]
    if blob_ids:
        async with services.sessionmaker() as session:
            rows = await session.execute(
                select(ReceiptBlob.id, ReceiptBlob.content).where(ReceiptBlob.id.in_(blob_ids))
            )
            inline = {row.id: row.content for row in rows}
    for receipt in item.receipts:
        filename = receipt.get("filename") or "receipt"
        content_type = receipt.get("content_type") or "application/octet-stream"
        if receipt.get("blob_id"):
            content = inline.get(uuid.UUID(receipt["blob_id"]))
            if content is None:
                raise Fail("receipt_missing", f"The stored receipt {filename} is missing.")
            blobs.append(Blob(content=content, filename=filename, content_type=content_type))
        elif receipt.get("url"):
            if fetcher is None:
                fetcher = ReceiptFetcher(
                    services.receipt_http, services.settings.receipt_allowed_hosts
                )
            blobs.append(await fetcher.fetch(str(receipt["url"])))
    return blobs


async def _ensure_file(
    ctx: Context, client: DineroClient, item: ExportItem, pending: dict[str, Any]
) -> dict[str, Any]:
    """Upload the voucher's file once; after an uncertain upload, find it in the archive first.

    Returns what is still to be stored: the file's guid, committed with the create's intent.
    """
    content, filename, content_type = await _prepared_file(ctx, item, pending)
    if item.step == Step.UPLOAD_SENT:
        found = await _find_upload(client, item, filename, len(content))
        if found is not None:
            ctx.count("upload_found")
            return {**pending, "dinero_file_guid": found}
    previous = item.step
    await save(ctx.services, item, **pending, step=Step.UPLOAD_SENT, sent_at=datetime.now(UTC))
    await checkpoint("before_upload")
    try:
        uploaded = await client.upload_file(content, filename, content_type)
    except PacerBusy:
        await save(ctx.services, item, step=previous)  # certainly not sent
        raise
    await checkpoint("after_upload")
    ctx.count("uploaded")
    return {"dinero_file_guid": uploaded.file_guid}


async def _search_archive(
    client: DineroClient,
    item: ExportItem,
    matches: Callable[[ArchivedFile], bool],
    file_status: FileStatus = "All",
) -> ArchivedFile | None:
    """The archived file uploaded since shortly before the item's uncertain call that matches.

    Dinero's own document words the upload-date filters the other way round ("uploadedAfter:
    limits the search to the given before date"), so which one is the lower bound is not
    certain. The natural reading is tried first; only when it finds nothing is the documented
    one tried too (one more request, and only after an uncertain outcome), so the look-up
    never concludes "not sent" from a filter read the other way.
    """
    since = ((item.sent_at or datetime.now(UTC)) - UPLOAD_LOOKBACK).date()
    for natural in (True, False):
        page = 0
        while True:
            files = await client.list_files(
                uploaded_after=since if natural else None,
                uploaded_before=None if natural else since,
                file_status=file_status,
                page=page,
                page_size=ARCHIVE_PAGE,
            )
            for stored in files:
                if stored.uploaded_at.date() >= since and matches(stored):
                    return stored
            if len(files) < ARCHIVE_PAGE:
                break
            page += 1
    return None


async def _find_upload(
    client: DineroClient, item: ExportItem, filename: str, size: int
) -> str | None:
    stem = filename.rsplit(".", 1)[0]
    found = await _search_archive(
        client,
        item,
        lambda f: f.name in (filename, stem) and f.size == size and bool(f.file_guid),
    )
    return found.file_guid if found is not None else None


def _purchase_voucher(ctx: Context, item: ExportItem) -> PurchaseVoucherCreate:
    lines = []
    for line in item.lines:
        account, tax_code = _resolve_line(ctx, line)
        lines.append(
            PurchaseVoucherLine(
                amount=_money(int(line["dkk_amount"])),
                account_number=account,
                description=_text(item, line),
                vat_code=tax_code,
            )
        )
    return PurchaseVoucherCreate(
        purchase_type="cash",
        voucher_date=item.voucher_date,
        lines=lines,
        deposit_account_number=_paid_from(ctx, item),
        file_guid=item.dinero_file_guid,
        external_reference=_reference(item),
    )


def _refund_voucher(ctx: Context, item: ExportItem) -> ManualVoucherCreate:
    """A refund reverses the expense: money back into the paying account, VAT reversed."""
    paid_from = _paid_from(ctx, item)
    lines = []
    for line in item.lines:
        account, tax_code = _resolve_line(ctx, line)
        lines.append(
            ManualVoucherLine(
                amount=_money(-int(line["dkk_amount"])),
                description=_text(item, line),
                account_number=paid_from,
                account_vat_code=NO_VAT,
                balancing_account_number=account,
                balancing_account_vat_code=tax_code,
            )
        )
    return ManualVoucherCreate(
        voucher_date=item.voucher_date,
        lines=lines,
        file_guid=item.dinero_file_guid,
        external_reference=_reference(item),
    )


async def _create_voucher(
    ctx: Context, client: DineroClient, item: ExportItem, pending: dict[str, Any]
) -> None:
    refund = _is_refund(item)
    # Without a create sent yet, a known file means the upload is done.
    previous = Step.UPLOADED if item.step != Step.CREATE_SENT else item.step
    await save(ctx.services, item, **pending, step=Step.CREATE_SENT, sent_at=datetime.now(UTC))
    await checkpoint("before_create")
    try:
        if refund:
            manual = await client.create_manual_voucher(_refund_voucher(ctx, item))
            guid, timestamp = manual.guid, manual.timestamp
            number, kind, sent = manual.voucher_number, MANUAL, baseline(manual)
        else:
            voucher = await client.create_purchase_voucher(_purchase_voucher(ctx, item))
            guid, timestamp = voucher.guid, voucher.timestamp
            number, kind, sent = voucher.voucher_number, PURCHASE, baseline(voucher)
    except PacerBusy:
        await save(ctx.services, item, step=previous)  # certainly not sent
        raise
    await checkpoint("after_create")
    await _created(ctx, item, kind, guid, timestamp, number, sent)


async def _created(
    ctx: Context,
    item: ExportItem,
    kind: str,
    guid: uuid.UUID,
    timestamp: str | None,
    number: int | None,
    sent: dict[str, Any] | None = None,
) -> None:
    now = datetime.now(UTC)
    await save(
        ctx.services,
        item,
        step=Step.CREATED,
        status=ItemStatus.AWAITING_APPROVAL,
        dinero_kind=kind,
        dinero_guid=guid,
        dinero_timestamp=timestamp,
        dinero_voucher_number=number,
        dinero_sent=sent,
        exported_at=now,
        attempts=0,
        next_attempt_at=None,
        waiting_code=None,
        waiting_message=None,
        failure_code=None,
        failure_message=None,
        dinero_message=None,
    )
    ctx.count("created")


async def _find_voucher(ctx: Context, client: DineroClient, item: ExportItem) -> bool:
    """After an uncertain create: the voucher that carries our file is ours."""
    if item.dinero_file_guid is None:
        return False
    if _is_refund(item):
        file_guid = item.dinero_file_guid
        stored = await _search_archive(
            client, item, lambda f: f.file_guid == file_guid and bool(f.linked), "Used"
        )
        if stored is None:
            return False
        manual = await client.get_manual_voucher(stored.linked[0].voucher_guid)
        await _created(
            ctx,
            item,
            MANUAL,
            manual.guid,
            manual.timestamp,
            manual.voucher_number,
            baseline(manual),
        )
        ctx.count("voucher_found")
        return True
    guids = await client.purchase_vouchers_by_file(item.dinero_file_guid)
    if not guids:
        return False
    voucher = await client.get_purchase_voucher(guids[0])
    await _created(
        ctx,
        item,
        PURCHASE,
        voucher.guid,
        voucher.timestamp,
        voucher.voucher_number,
        baseline(voucher),
    )
    ctx.count("voucher_found")
    return True


# --- ledger items (reimbursements, top-ups) --------------------------------------------------


def _ledger_item(ctx: Context, item: ExportItem) -> LedgerItem:
    """Reimbursement: out-of-pocket against the reimbursement bank; top-up: wallet against bank.

    A positive amount debits `account_number` and credits the balancing account; negative
    amounts (an employee paying back, a wallet unload) run the other way.
    """
    if item.type == ItemType.REIMBURSEMENT:
        account, balancing = (
            ctx.accounts["out_of_pocket_account"],
            ctx.accounts["reimbursement_account"],
        )
    else:
        account, balancing = ctx.accounts["deposit_account"], ctx.accounts["top_up_account"]
    return LedgerItem(
        id=item.id,
        voucher_date=item.voucher_date,
        lines=[
            LedgerItemLine(
                id=item.id,
                amount=_money(item.dkk_amount_minor),
                description=_text(item),
                account_number=account,
                account_vat_code=NO_VAT,
                balancing_account_number=balancing,
                balancing_account_vat_code=NO_VAT,
            )
        ],
    )


async def _ledger_pass(ctx: Context, items: list[ExportItem]) -> None:
    assert ctx.client is not None
    client = ctx.client
    try:
        uncertain = [i for i in items if i.step in (Step.CREATE_SENT, Step.BOOK_SENT)]
        if uncertain:
            await _ledger_reconcile(ctx, client, uncertain)
        new = [i for i in items if i.step == Step.NEW and not i.status.settled]
        for start in range(0, len(new), LEDGER_BATCH):
            await _ledger_create(ctx, client, new[start : start + LEDGER_BATCH])
        created = [i for i in items if i.step == Step.CREATED and not i.status.settled]
        if created:
            await _ledger_book(ctx, client, created)
    except DineroOutcomeUnknown:
        ctx.later(BOOKING_POLL_SECONDS)  # the next pass reconciles by our ids
    except DineroApiError as exc:
        if not exc.transient:
            raise
        pending = [i for i in items if not i.status.settled]
        for item in pending:
            await _transient(ctx, item, exc, count=not isinstance(exc, DineroRateLimited))
    except DineroTransportError as exc:
        for item in [i for i in items if not i.status.settled]:
            await _transient(ctx, item, exc)


async def _ledger_reconcile(ctx: Context, client: DineroClient, items: list[ExportItem]) -> None:
    """Ask Dinero about items whose last call has no known outcome, by our own ids."""
    statuses = await _statuses(client, [i.id for i in items])
    for item in items:
        status = statuses.get(item.id)
        if status is None or status.status is None:
            if item.step == Step.CREATE_SENT:
                await save(ctx.services, item, step=Step.NEW)  # never arrived: send again
            continue
        if status.is_booked:
            await _ledger_booked(ctx, item, status.voucher_number)
        elif status.status == "PendingBooking":
            await save(ctx.services, item, step=Step.BOOK_SENT, dinero_version=status.version)
            ctx.later(BOOKING_POLL_SECONDS)
        else:  # Draft: created, booking not (yet) asked for
            await save(ctx.services, item, step=Step.CREATED, dinero_version=status.version)


async def _statuses(
    client: DineroClient, ids: list[uuid.UUID]
) -> dict[uuid.UUID, LedgerItemStatus]:
    """Booking status by our ids; Dinero refuses the whole call if one id is unknown to it."""
    try:
        return {s.id: s for s in await client.ledger_item_status(ids)}
    except DineroNotFound:
        if len(ids) == 1:
            return {}
    found: dict[uuid.UUID, LedgerItemStatus] = {}
    for one in ids:
        found.update(await _statuses(client, [one]))
    return found


async def _ledger_create(ctx: Context, client: DineroClient, batch: list[ExportItem]) -> None:
    for item in batch:
        await save(
            ctx.services,
            item,
            step=Step.CREATE_SENT,
            status=ItemStatus.EXPORTING,
            sent_at=datetime.now(UTC),
            waiting_code=None,
            waiting_message=None,
            dinero_kind=LEDGER,
        )
    await checkpoint("before_ledger_create")
    try:
        refs = await client.create_ledger_items([_ledger_item(ctx, i) for i in batch])
    except PacerBusy:
        for item in batch:
            await save(ctx.services, item, step=Step.NEW)  # certainly not sent
        raise
    except DineroApiError as exc:
        if exc.transient or not exc.status or exc.status >= 500:
            raise
        if len(batch) == 1:
            await _fail(ctx, batch[0], _dinero_failure(exc))
            return
        # One bad item refuses the whole call: find it by sending each alone.
        for item in batch:
            await save(ctx.services, item, step=Step.NEW)
            await _ledger_create(ctx, client, [item])
        return
    await checkpoint("after_ledger_create")
    by_id = {ref.id: ref for ref in refs}
    for item in batch:
        ref = by_id.get(item.id)
        await save(
            ctx.services,
            item,
            step=Step.CREATED,
            dinero_version=ref.version if ref else None,
            exported_at=datetime.now(UTC),
        )
    ctx.stats["ledger_created"] = ctx.stats.get("ledger_created", 0) + len(batch)


async def _ledger_book(ctx: Context, client: DineroClient, items: list[ExportItem]) -> None:
    missing = [i for i in items if i.dinero_version is None]
    if missing:  # the create answer did not carry every version: read them
        statuses = await _statuses(client, [i.id for i in missing])
        for item in missing:
            status = statuses.get(item.id)
            if status is not None:
                item.dinero_version = status.version
    refs = [LedgerItemRef(id=i.id, version=i.dinero_version) for i in items]
    for item in items:
        await save(ctx.services, item, step=Step.BOOK_SENT, sent_at=datetime.now(UTC))
    await checkpoint("before_book")
    try:
        await client.book_ledger_items(refs)
    except PacerBusy:
        for item in items:
            await save(ctx.services, item, step=Step.CREATED)  # certainly not sent
        raise
    await checkpoint("after_book")
    ctx.later(BOOKING_POLL_SECONDS)  # booking is asynchronous: follow it on the next pass


async def _ledger_booked(ctx: Context, item: ExportItem, number: int | None) -> None:
    now = datetime.now(UTC)
    await save(
        ctx.services,
        item,
        step=Step.BOOKED,
        status=ItemStatus.BOOKED,
        dinero_voucher_number=number,
        booked_at=now,
        attempts=0,
        next_attempt_at=None,
        waiting_code=None,
        waiting_message=None,
    )
    ctx.count("booked")

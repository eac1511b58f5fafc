"""Helpers for the intake tests: items as the platform sends them, signed webhooks, DB reads."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from app.chart.models import Category
from app.companies.service import ensure_company
from app.exports.models import Export, ExportItem, InlineReceipt
from tests.conftest import WEBHOOK_SECRET

RECEIPT_HOST = "receipts.example.com"
WEBHOOK = "/v1/webhooks/expenses"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def card(
    external_id: str = "exp_1", value: int = 24500, *, account: int = 7000, **overrides: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "external_id": external_id,
        "type": "card_expense",
        "date": "2026-11-03",
        "description": "Taxa Nord, client visit",
        "amount": {"value": value, "currency": "DKK"},
        "lines": [{"account_number": account, "tax_code": "I25", "amount": value}],
        "employee": {"id": "emp_7", "name": "Mette Jensen"},
    }
    item.update(overrides)
    return item


def reimbursement(external_id: str = "rb_1", value: int = 50000) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "type": "reimbursement",
        "date": "2026-11-04",
        "description": "Pay-back of out-of-pocket expenses",
        "amount": {"value": value, "currency": "DKK"},
    }


def inline_receipt(content: bytes = PNG, filename: str = "taxa.png") -> dict[str, Any]:
    return {
        "content_base64": base64.b64encode(content).decode(),
        "filename": filename,
        "content_type": "image/png",
    }


def signed(
    body: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    at: datetime | None = None,
    secret: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and its Standard Webhooks headers, signed with the test secret."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    sent_at = at or datetime.now(UTC)
    signature = Webhook(secret or WEBHOOK_SECRET.get_secret_value()).sign(
        msg_id, sent_at, raw.decode()
    )
    return raw, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def deliver(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, **options: Any
) -> httpx.Response:
    """POST `body` to the expenses webhook, signed (`options` as for `signed`)."""
    raw, headers = signed(body, **options)
    return await client.post(WEBHOOK, content=raw, headers=headers)


def webhook_body(company: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "export.requested", "company_id": company, "items": list(items)}


async def add_category(db: AsyncSession, company: str, account_number: int = 7000) -> uuid.UUID:
    await ensure_company(session=db, company_id=company)
    category = Category(
        company_id=company,
        account_number=account_number,
        account_name=f"Account {account_number}",
        hidden=False,
        active=True,
    )
    db.add(category)
    await db.flush()
    return category.id


async def items_of(db: AsyncSession, company: str) -> list[ExportItem]:
    result = await db.execute(
        select(ExportItem)
        .where(ExportItem.company_id == company)
        .order_by(ExportItem.external_id)
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def count_exports(db: AsyncSession, company: str) -> int:
    result = await db.execute(select(func.count()).where(Export.company_id == company))
    return int(result.scalar_one())


async def blobs_of(db: AsyncSession, item_id: uuid.UUID) -> list[bytes]:
    result = await db.execute(select(InlineReceipt.content).where(InlineReceipt.item_id == item_id))
    return list(result.scalars())


_WAITING_RUNS = (
    "FROM procrastinate_jobs WHERE task_name = 'exports.run' "
    "AND status = 'todo' AND args->>'company_id' = :c"
)


async def queued_runs(db: AsyncSession, company: str) -> int:
    result = await db.execute(text(f"SELECT count(*) {_WAITING_RUNS}"), {"c": company})
    return int(result.scalar_one())


async def waiting_runs(db: AsyncSession, company: str) -> list[datetime | None]:
    """When the company's waiting runner jobs may start (None: at once)."""
    result = await db.execute(text(f"SELECT scheduled_at {_WAITING_RUNS}"), {"c": company})
    return list(result.scalars())

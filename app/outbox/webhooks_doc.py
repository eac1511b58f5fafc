"""The outgoing webhook, documented in openapi.yaml (`webhooks`): what the platform receives."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header

from app.outbox.schemas import ExportItemUpdated


def document_webhooks(app: FastAPI) -> None:
    """Describe `export_item.updated` (sent by app/outbox/delivery.py; no route is served)."""

    @app.webhooks.post(
        "export_item.updated",
        operation_id="export_item_updated",
        tags=["outgoing webhooks"],
        status_code=200,
        response_description="Any 2xx marks the event delivered; anything else is retried.",
    )
    async def export_item_updated(
        body: ExportItemUpdated,
        webhook_id: Annotated[
            str, Header(description="The event's id: the same on every retry (drop repeats).")
        ],
        webhook_timestamp: Annotated[str, Header(description="Unix seconds of this attempt.")],
        webhook_signature: Annotated[
            str,
            Header(
                description="`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` with "
                "PLATFORM_WEBHOOK_SECRET (Standard Webhooks)."
            ),
        ],
    ) -> None:
        """Sent to PLATFORM_WEBHOOK_URL for each change of an export item after intake (the 202
        gave its first status): its status (exporting, awaiting_approval, booked, failed,
        deleted_in_dinero, queued again on retry), an edit of its draft in Dinero
        (`edited_in_dinero`), or a late receipt (`late_receipt`). In order per item; retried
        with backoff (up to 10 minutes apart) for 72 hours."""

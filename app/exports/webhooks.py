"""Signed webhooks (Standard Webhooks): the headers checked before the body, then the signature.

The headers are checked first (presence, id, a timestamp within tolerance), so a webhook that
cannot be valid is refused before a byte of its body is read; the signature is checked on the
raw body, before it is parsed.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.errors import AppError

WEBHOOK_TOLERANCE_SECONDS: Final = 5 * 60
"""Standard Webhooks' tolerance for webhook-timestamp, both ways."""
EXPORT_REQUESTED: Final = "export.requested"
"""The webhook type that carries items to export; other types are acknowledged and ignored."""


@functools.lru_cache(maxsize=4)
def _webhook(secret: str) -> Webhook:
    return Webhook(secret)


@dataclass(frozen=True, slots=True)
class WebhookHeaders:
    """The Standard Webhooks headers of a request, checked for shape (not yet for signature)."""

    id: str
    timestamp: str
    signature: str


_WEBHOOK_ID: Final = re.compile(r"[\x21-\x7e]{1,255}")
"""Printable ASCII, as the ids senders generate (`msg_…`); stored per company."""
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,12}")


def check_webhook_headers(headers: Mapping[str, str]) -> WebhookHeaders:
    """Presence, id, and a timestamp within tolerance: all from the headers, before any body."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "").strip()
    signature = headers.get("webhook-signature", "")
    missing = [
        name
        for name, value in (
            ("webhook-id", webhook_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        )
        if not value
    ]
    if missing:
        raise AppError(
            f"The webhook lacks the {', '.join(missing)} header(s) of Standard Webhooks.",
            code="webhook_headers_missing",
            title="Webhook not signed",
            errors={name: "Missing." for name in missing},
        )
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise AppError(
            "The webhook-id header must be 1-255 printable ASCII characters.",
            code="webhook_id_invalid",
            errors={"webhook-id": "1-255 printable ASCII characters."},
        )
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise AppError(
            "The webhook-timestamp header must be Unix seconds.",
            code="webhook_timestamp_invalid",
            errors={"webhook-timestamp": "Not an integer number of seconds."},
        )
    if abs(time.time() - int(timestamp)) > WEBHOOK_TOLERANCE_SECONDS:
        raise AppError(
            "The webhook-timestamp is more than 5 minutes away from now, so the webhook may be "
            "a replay; it was not accepted (check the sender's clock).",
            code="webhook_timestamp_stale",
            errors={"webhook-timestamp": "More than 5 minutes from now."},
        )
    return WebhookHeaders(id=webhook_id, timestamp=timestamp, signature=signature)


def verify_webhook_signature(body: bytes, signed: WebhookHeaders, *, secret: str) -> None:
    """Check the Standard Webhooks signature of `body` (401 `webhook_signature_invalid`)."""
    try:
        text = body.decode("utf-8")
        _webhook(secret).verify(
            text,
            {
                "webhook-id": signed.id,
                "webhook-timestamp": signed.timestamp,
                "webhook-signature": signed.signature,
            },
            json_parse=False,
        )
    except (WebhookVerificationError, UnicodeDecodeError, ValueError) as exc:
        # ValueError covers a malformed signature list or bad base64 in it (binascii.Error).
        raise AppError(
            "The webhook signature does not match its body with our WEBHOOK_SECRET; it was "
            "not accepted.",
            code="webhook_signature_invalid",
            status=401,
            title="Webhook signature invalid",
        ) from exc


def verify_webhook(body: bytes, headers: Mapping[str, str], *, secret: str) -> str:
    """Check a Standard Webhooks request (headers, then signature); returns the webhook id."""
    signed = check_webhook_headers(headers)
    verify_webhook_signature(body, signed, secret=secret)
    return signed.id

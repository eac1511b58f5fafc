"""The small rules: what counts as an edit, how long delivery backs off, which settings pass."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.backoff import WEBHOOK_EVENT
from app.exports.drafts import differences
from app.outbox.schemas import item_update
from tests.conftest import make_settings


def _draft(**changes: Any) -> dict[str, Any]:
    draft: dict[str, Any] = {
        "kind": "purchase_voucher",
        "voucher_date": "2026-11-03",
        "deposit_account_number": 55030,
        "file_guid": "f1",
        "total": "245.00",
        "lines": [
            {"account_number": 2800, "vat_code": "I25", "amount": "200.00", "description": "Taxa"},
            {"account_number": 2810, "vat_code": "none", "amount": "45.00", "description": "Tip"},
        ],
    }
    draft.update(changes)
    return draft


def test_the_same_draft_has_no_differences() -> None:
    assert differences(_draft(), _draft()) == []


def test_differences_name_each_field_and_line() -> None:
    now = _draft(total="250.00", deposit_account_number=55000)
    now["lines"] = [dict(now["lines"][0], account_number=2900), dict(now["lines"][1])]
    now["lines"][1]["amount"] = "50.00"
    assert differences(_draft(), now) == [
        {"field": "deposit_account_number", "sent": 55030, "now": 55000},
        {"field": "total", "sent": "245.00", "now": "250.00"},
        {"field": "lines[0].account_number", "sent": 2800, "now": 2900},
        {"field": "lines[1].amount", "sent": "45.00", "now": "50.00"},
    ]


def test_added_and_removed_lines_are_differences() -> None:
    one_line = _draft()
    one_line["lines"] = one_line["lines"][:1]
    [removed] = [c for c in differences(_draft(), one_line) if c["field"].startswith("lines")]
    assert removed["field"] == "lines[1]"
    assert removed["now"] is None
    [added] = [c for c in differences(one_line, _draft()) if c["field"].startswith("lines")]
    assert added["sent"] is None


def test_backoff_doubles_and_is_capped_at_ten_minutes() -> None:
    assert WEBHOOK_EVENT.delay(1, fraction=0.5) == timedelta(seconds=5)
    assert WEBHOOK_EVENT.delay(2, fraction=0.5) == timedelta(seconds=10)
    assert WEBHOOK_EVENT.delay(30, fraction=1.0) == timedelta(minutes=10) * 1.2
    assert WEBHOOK_EVENT.delay(30, fraction=0.0) == timedelta(minutes=10) * 0.8


def test_a_ledger_item_event_names_the_ledger_item() -> None:
    item_id = uuid.uuid4()
    data = item_update(
        company_id="acme",
        previous_status="exporting",
        item={
            "id": str(item_id),
            "export_id": str(uuid.uuid4()),
            "external_id": "reimb-1",
            "type": "reimbursement",
            "status": "booked",
            "amount_minor": 123456,
            "currency": "DKK",
            "dinero_kind": "ledger_item",
            "dinero_guid": None,
            "dinero_voucher_number": 12,
            "changed_at": "2026-11-21T10:00:00+00:00",
        },
    )
    assert data.dinero is not None
    assert (data.dinero.ledger_item_id, data.dinero.voucher_guid) == (item_id, None)
    assert (data.failure, data.edited_in_dinero, data.late_receipt) == (None, None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("platform_webhook_url", "ftp://platform.example/hooks"),
        ("platform_webhook_secret", "whsec_"),
        ("follow_up_interval_seconds", 1),
    ],
)
def test_settings_refuse_unusable_values(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        make_settings(**{name: value})


def test_settings_take_a_platform_url_and_secret() -> None:
    settings = make_settings(
        platform_webhook_url="https://platform.example/hooks",
        platform_webhook_secret="whsec_dGVzdC1zZWNyZXQ=",
    )
    assert settings.platform_webhook_url == "https://platform.example/hooks"
    assert settings.follow_up_interval_seconds == 60

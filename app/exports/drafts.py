"""What a draft looked like when we made it, and how the accountant changed it since.

The baseline is taken from Dinero's own answer to the create (a read model), so a later read is
compared like with like: same VAT split, same account defaults, amounts incl. VAT as Dinero
computed them. Amounts are kept as strings with two decimals (exact, JSON-safe).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.dinero.models import ManualVoucher, PurchaseVoucher
from app.dinero.wire import TWO_PLACES
from app.exports.mapping import MANUAL, PURCHASE

Voucher = PurchaseVoucher | ManualVoucher


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(TWO_PLACES))


def baseline(voucher: Voucher) -> dict[str, Any]:
    """The parts of a draft an accountant may change, as comparable JSON."""
    if isinstance(voucher, PurchaseVoucher):
        return {
            "kind": PURCHASE,
            "voucher_date": voucher.voucher_date.isoformat() if voucher.voucher_date else None,
            "deposit_account_number": voucher.deposit_account_number,
            "file_guid": voucher.file_guid,
            "total": _money(voucher.total_incl_vat),
            "lines": [
                {
                    "account_number": line.account_number,
                    "vat_code": line.vat_code,
                    "amount": _money(line.amount_incl_vat_value),
                    "description": line.description,
                }
                for line in voucher.lines
            ],
        }
    total = sum((line.amount_incl_vat_value for line in voucher.lines), Decimal(0))
    return {
        "kind": MANUAL,
        "voucher_date": voucher.voucher_date.isoformat() if voucher.voucher_date else None,
        "file_guid": voucher.file_guid,
        "total": _money(total),
        "lines": [
            {
                "account_number": line.account_number,
                "vat_code": line.account_vat_code,
                "balancing_account_number": line.balancing_account_number,
                "balancing_vat_code": line.balancing_account_vat_code,
                "amount": _money(line.amount_incl_vat_value),
                "description": line.description,
            }
            for line in voucher.lines
        ],
    }


def differences(sent: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    """Each field that differs: `{"field", "sent", "now"}`, lines as `lines[0].amount`."""
    changes: list[dict[str, Any]] = []
    for key in sorted((set(sent) | set(now)) - {"kind", "lines"}):
        if sent.get(key) != now.get(key):
            changes.append({"field": key, "sent": sent.get(key), "now": now.get(key)})
    sent_lines: list[dict[str, Any]] = sent.get("lines") or []
    now_lines: list[dict[str, Any]] = now.get("lines") or []
    for index in range(max(len(sent_lines), len(now_lines))):
        if index >= len(now_lines):
            changes.append({"field": f"lines[{index}]", "sent": sent_lines[index], "now": None})
            continue
        if index >= len(sent_lines):
            changes.append({"field": f"lines[{index}]", "sent": None, "now": now_lines[index]})
            continue
        before, after = sent_lines[index], now_lines[index]
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes.append(
                    {
                        "field": f"lines[{index}].{key}",
                        "sent": before.get(key),
                        "now": after.get(key),
                    }
                )
    return changes

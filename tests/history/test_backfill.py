"""Migration 0011: the mappings and categories already stored become their first history rows."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from alembic import command

from app.db import libpq_url
from app.migrations_util import alembic_config


def test_upgrade_keeps_existing_mappings_and_categories_as_their_first_history(
    make_database: Callable[[], str],
) -> None:
    url = make_database()
    config = alembic_config(url)
    command.upgrade(config, "0010")
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("INSERT INTO companies (id) VALUES ('acme')")
        conn.execute(
            "INSERT INTO company_settings (company_id, deposit_account, reimbursement_account,"
            " updated_at) VALUES ('acme', 55000, 58000, '2026-10-01T08:00:00Z')"
        )
        conn.execute(
            "INSERT INTO categories (id, company_id, account_number, account_name, name,"
            " tax_code, hidden, active, updated_at) VALUES ("
            "'8b0f6a52-7d4e-4d47-9f0c-1b7c3d2e9a10', 'acme', 2750, 'Transport', 'Taxi',"
            " 'I25', false, true, '2026-10-02T09:00:00Z')"
        )
    command.upgrade(config, "0011")
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT kind, setting, category_id::text, changes, state, changed_at::text,"
            " changed_by, source FROM settings_history ORDER BY kind, setting"
        ).fetchall()
    state = {
        "deposit_account": 55000,
        "out_of_pocket_account": None,
        "reimbursement_account": 58000,
        "top_up_account": None,
    }
    assert rows == [
        (
            "category",
            None,
            "8b0f6a52-7d4e-4d47-9f0c-1b7c3d2e9a10",
            {},
            {
                "account_number": 2750,
                "account_name": "Transport",
                "name": "Taxi",
                "tax_code": "I25",
                "hidden": False,
                "active": True,
                "inactive_reason": None,
            },
            "2026-10-02 09:00:00+00",
            None,
            "backfill",
        ),
        (
            "mapping",
            "deposit_account",
            None,
            {"deposit_account": {"from": None, "to": 55000}},
            state,
            "2026-10-01 08:00:00+00",
            None,
            "backfill",
        ),
        (
            "mapping",
            "reimbursement_account",
            None,
            {"reimbursement_account": {"from": None, "to": 58000}},
            state,
            "2026-10-01 08:00:00+00",
            None,
            "backfill",
        ),
    ]
    command.downgrade(config, "0010")

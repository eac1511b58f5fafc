"""Reversals: an exported item may be undone in Dinero (`reversing`, `reversed`) and exported
again; `export_reversals` holds each reversal's intent, steps and the reversing entry, and
`export_items.dinero_ledger_id` the new ledger `Id` of an item exported again.
"""

import sqlalchemy as sa
from alembic import op

from migrations.helpers import (
    EXPORT_ITEMS_OUTBOX_TRIGGER,
    cascade_fk,
    company_fk,
    company_id,
    timestamps,
)

revision = "0012"
down_revision = "0011"

_OLD_STATUSES = (
    "queued",
    "exporting",
    "awaiting_approval",
    "booked",
    "failed",
    "deleted_in_dinero",
)


def upgrade() -> None:
    op.execute("ALTER TYPE export_item_status ADD VALUE IF NOT EXISTS 'reversing'")
    op.execute("ALTER TYPE export_item_status ADD VALUE IF NOT EXISTS 'reversed'")
    op.add_column("export_items", sa.Column("dinero_ledger_id", sa.Uuid(), nullable=True))
    op.create_table(
        "export_reversals",
        sa.Column("id", sa.Uuid(), nullable=False),
        company_id(),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("voucher_date", sa.Date(), nullable=False),
        sa.Column("previous_status", sa.String(length=32), nullable=False),
        sa.Column("original_kind", sa.String(length=16), nullable=True),
        sa.Column("original_guid", sa.Uuid(), nullable=True),
        sa.Column("original_voucher_number", sa.Integer(), nullable=True),
        sa.Column("original_file_guid", sa.String(length=64), nullable=True),
        sa.Column("dinero_guid", sa.Uuid(), nullable=True),
        sa.Column("dinero_timestamp", sa.String(length=64), nullable=True),
        sa.Column("dinero_version", sa.String(length=64), nullable=True),
        sa.Column("voucher_number", sa.Integer(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("dinero_message", sa.Text(), nullable=True),
        sa.Column("differences", sa.dialects.postgresql.JSONB(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *timestamps(),
        company_fk("export_reversals"),
        cascade_fk("export_reversals", "item_id", "export_items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_reversals")),
        sa.UniqueConstraint(
            "company_id",
            "idempotency_key",
            name=op.f("uq_export_reversals_company_id_idempotency_key"),
        ),
    )
    op.create_index(
        op.f("ix_export_reversals_item_id"), "export_reversals", ["item_id"], unique=False
    )
    op.create_index(
        "uq_export_reversals_item_pending",
        "export_reversals",
        ["item_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("uq_export_reversals_item_pending", table_name="export_reversals")
    op.drop_index(op.f("ix_export_reversals_item_id"), table_name="export_reversals")
    op.drop_table("export_reversals")
    op.drop_column("export_items", "dinero_ledger_id")
    # PostgreSQL cannot drop an enum value: the type is rebuilt without the two. A reversed or
    # reversing item was booked or awaiting approval before; it is stored as booked.
    op.execute("DROP TRIGGER export_items_outbox ON export_items")  # no events for this
    op.execute(
        "UPDATE export_items SET status = 'booked' WHERE status IN ('reversing', 'reversed')"
    )
    op.execute("ALTER TYPE export_item_status RENAME TO export_item_status_old")
    values = ", ".join(f"'{v}'" for v in _OLD_STATUSES)
    op.execute(f"CREATE TYPE export_item_status AS ENUM ({values})")
    op.execute(
        "ALTER TABLE export_items ALTER COLUMN status TYPE export_item_status "
        "USING status::text::export_item_status"
    )
    op.execute("DROP TYPE export_item_status_old")
    # The outbox trigger of 0007 reads `status`: it is put back unchanged around the type's rebuild.
    op.execute(EXPORT_ITEMS_OUTBOX_TRIGGER)

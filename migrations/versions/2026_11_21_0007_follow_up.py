"""Follow-up of drafts in Dinero and the outbox of outgoing webhooks (with its trigger)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import (
    EXPORT_ITEMS_OUTBOX_TRIGGER,
    cascade_fk,
    company_fk,
    company_id,
    timestamp,
    timestamps,
)

revision = "0007"
down_revision = "0006"

# Every change of an item's status, Dinero edits or late-receipt state writes an outbox row in
# the same transaction, whichever code path made it. The row carries the item as it was right
# after the change (app/outbox/delivery.py turns it into the webhook's `data`).
_FUNCTION = """
CREATE FUNCTION export_items_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_events (company_id, item_id, type, previous_status, status, item)
    VALUES (
        NEW.company_id,
        NEW.id,
        'export_item.updated',
        OLD.status::text,
        NEW.status::text,
        jsonb_build_object(
            'id', NEW.id,
            'export_id', NEW.export_id,
            'external_id', NEW.external_id,
            'type', NEW.type,
            'status', NEW.status,
            'amount_minor', NEW.amount_minor,
            'currency', NEW.currency,
            'dinero_kind', NEW.dinero_kind,
            'dinero_guid', NEW.dinero_guid,
            'dinero_voucher_number', NEW.dinero_voucher_number,
            'dinero_file_guid', NEW.dinero_file_guid,
            'waiting_code', NEW.waiting_code,
            'waiting_message', NEW.waiting_message,
            'failure_code', NEW.failure_code,
            'failure_message', NEW.failure_message,
            'dinero_message', NEW.dinero_message,
            'dinero_changes', NEW.dinero_changes,
            'late_receipt_status', NEW.late_receipt_status,
            'late_receipt_message', NEW.late_receipt_message,
            'exported_at', NEW.exported_at,
            'booked_at', NEW.booked_at,
            'changed_at', clock_timestamp()
        )
    );
    RETURN NULL;
END;
$$
"""


def upgrade() -> None:
    op.add_column(
        "export_items",
        sa.Column("dinero_sent", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "export_items",
        sa.Column("dinero_changes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "export_items",
        sa.Column("follow_up_checked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "export_items", sa.Column("late_receipt_status", sa.String(length=16), nullable=True)
    )
    op.add_column("export_items", sa.Column("late_receipt_message", sa.Text(), nullable=True))
    op.add_column(
        "export_items", sa.Column("late_receipt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "follow_up_states",
        company_id(),
        sa.Column("entries_watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_requests", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        *timestamps(),
        company_fk("follow_up_states"),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_follow_up_states")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        company_id(),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("previous_status", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("item", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        timestamp("created_at"),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        company_fk("outbox_events"),
        cascade_fk("outbox_events", "item_id", "export_items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("seq", name=op.f("uq_outbox_events_seq")),
    )
    op.create_index(
        "ix_outbox_events_pending",
        "outbox_events",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NULL AND given_up_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_events_item_id_seq", "outbox_events", ["item_id", "seq"], unique=False
    )
    op.execute(_FUNCTION)
    op.execute(EXPORT_ITEMS_OUTBOX_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS export_items_outbox ON export_items")
    op.execute("DROP FUNCTION IF EXISTS export_items_outbox()")
    op.drop_index("ix_outbox_events_item_id_seq", table_name="outbox_events")
    op.drop_index(
        "ix_outbox_events_pending",
        table_name="outbox_events",
        postgresql_where=sa.text("delivered_at IS NULL AND given_up_at IS NULL"),
    )
    op.drop_table("outbox_events")
    op.drop_table("follow_up_states")
    op.drop_column("export_items", "late_receipt_at")
    op.drop_column("export_items", "late_receipt_message")
    op.drop_column("export_items", "late_receipt_status")
    op.drop_column("export_items", "follow_up_checked_at")
    op.drop_column("export_items", "dinero_changes")
    op.drop_column("export_items", "dinero_sent")

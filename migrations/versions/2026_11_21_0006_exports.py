"""Exports, their items (the exactly-once steps) and inline receipts."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import cascade_fk, company_fk, company_id, timestamps

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        company_id(),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("webhook_id", sa.String(length=255), nullable=True),
        sa.Column("item_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rejected", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        company_fk("exports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
        sa.UniqueConstraint(
            "company_id", "idempotency_key", name=op.f("uq_exports_company_id_idempotency_key")
        ),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_exports_webhook_id")),
    )
    op.create_table(
        "export_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        company_id(),
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "card_expense",
                "out_of_pocket_expense",
                "reimbursement",
                "wallet_top_up",
                name="export_item_type",
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "exporting",
                "awaiting_approval",
                "booked",
                "failed",
                "deleted_in_dinero",
                name="export_item_status",
            ),
            nullable=False,
        ),
        sa.Column(
            "step",
            sa.Enum(
                "new",
                "upload_sent",
                "uploaded",
                "create_sent",
                "created",
                "book_sent",
                "booked",
                name="export_item_step",
            ),
            nullable=False,
        ),
        sa.Column("voucher_date", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("dkk_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("employee", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("receipts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("receipt_file", sa.LargeBinary(), nullable=True),
        sa.Column("receipt_filename", sa.String(length=255), nullable=True),
        sa.Column("receipt_content_type", sa.String(length=100), nullable=True),
        sa.Column("receipt_sha256", sa.String(length=64), nullable=True),
        sa.Column("waiting_code", sa.String(length=64), nullable=True),
        sa.Column("waiting_message", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("dinero_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dinero_file_guid", sa.String(length=64), nullable=True),
        sa.Column("dinero_kind", sa.String(length=16), nullable=True),
        sa.Column("dinero_guid", sa.Uuid(), nullable=True),
        sa.Column("dinero_timestamp", sa.String(length=64), nullable=True),
        sa.Column("dinero_version", sa.String(length=64), nullable=True),
        sa.Column("dinero_voucher_number", sa.Integer(), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        *timestamps(),
        company_fk("export_items"),
        cascade_fk("export_items", "export_id", "exports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_items")),
        sa.UniqueConstraint(
            "company_id",
            "type",
            "external_id",
            name=op.f("uq_export_items_company_id_type_external_id"),
        ),
    )
    op.create_index(
        "ix_export_items_company_status", "export_items", ["company_id", "status"], unique=False
    )
    op.create_index("ix_export_items_export_id", "export_items", ["export_id"], unique=False)
    op.create_index(
        "ix_export_items_company_created",
        "export_items",
        ["company_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "export_receipt_blobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        cascade_fk("export_receipt_blobs", "item_id", "export_items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_receipt_blobs")),
    )
    op.create_index(
        op.f("ix_export_receipt_blobs_item_id"), "export_receipt_blobs", ["item_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_export_receipt_blobs_item_id"), table_name="export_receipt_blobs")
    op.drop_table("export_receipt_blobs")
    op.drop_index("ix_export_items_export_id", table_name="export_items")
    op.drop_index("ix_export_items_company_created", table_name="export_items")
    op.drop_index("ix_export_items_company_status", table_name="export_items")
    op.drop_table("export_items")
    op.drop_table("exports")
    sa.Enum(name="export_item_step").drop(op.get_bind(), checkfirst=False)
    sa.Enum(name="export_item_status").drop(op.get_bind(), checkfirst=False)
    sa.Enum(name="export_item_type").drop(op.get_bind(), checkfirst=False)

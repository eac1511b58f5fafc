"""Data sources: named imports of Dinero data and their records."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import cascade_fk, company_fk, company_id, timestamps

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "data_sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        company_id(),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("data_types", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("accounting_year_start", sa.Date(), nullable=True),
        sa.Column("accounting_year_end", sa.Date(), nullable=True),
        sa.Column("accounting_year_name", sa.String(length=64), nullable=True),
        sa.Column("default_date_field", sa.String(length=32), nullable=True),
        sa.Column("refresh_minutes", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refresh_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_refresh_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_dinero_message", sa.Text(), nullable=True),
        *timestamps(),
        company_fk("data_sources"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
    )
    op.create_index(op.f("ix_data_sources_company_id"), "data_sources", ["company_id"])
    op.create_index(op.f("ix_data_sources_next_refresh_at"), "data_sources", ["next_refresh_at"])

    op.create_table(
        "data_source_types",
        sa.Column("data_source_id", sa.Uuid(), nullable=False),
        sa.Column("data_type", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("deleted_records", sa.Integer(), nullable=False),
        sa.Column("next_page", sa.Integer(), nullable=True),
        sa.Column("through_date", sa.Date(), nullable=True),
        sa.Column("pass_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        cascade_fk("data_source_types", "data_source_id", "data_sources"),
        sa.PrimaryKeyConstraint("data_source_id", "data_type", name=op.f("pk_data_source_types")),
    )

    # One sequence for every record: a row takes a new value whenever it is inserted or
    # changes, so "seq greater than the cursor" is "added or changed since".
    op.execute(sa.schema.CreateSequence(sa.Sequence("data_source_records_seq")))
    op.create_table(
        "data_source_records",
        sa.Column("data_source_id", sa.Uuid(), nullable=False),
        sa.Column("data_type", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger(),
            server_default=sa.text("nextval('data_source_records_seq'::regclass)"),
            nullable=False,
        ),
        sa.Column("doc", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("record_date", sa.Date(), nullable=True),
        sa.Column("payment_date", sa.Date(), nullable=True),
        sa.Column("dinero_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dinero_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        cascade_fk("data_source_records", "data_source_id", "data_sources"),
        sa.PrimaryKeyConstraint(
            "data_source_id", "data_type", "key", name=op.f("pk_data_source_records")
        ),
    )
    op.execute("ALTER SEQUENCE data_source_records_seq OWNED BY data_source_records.seq")
    op.create_index(
        "ix_data_source_records_source_seq", "data_source_records", ["data_source_id", "seq"]
    )
    op.create_index(
        "ix_data_source_records_source_type_seq",
        "data_source_records",
        ["data_source_id", "data_type", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_data_source_records_source_type_seq", table_name="data_source_records")
    op.drop_index("ix_data_source_records_source_seq", table_name="data_source_records")
    op.drop_table("data_source_records")  # drops the sequence it owns
    op.drop_table("data_source_types")
    op.drop_index(op.f("ix_data_sources_next_refresh_at"), table_name="data_sources")
    op.drop_index(op.f("ix_data_sources_company_id"), table_name="data_sources")
    op.drop_table("data_sources")

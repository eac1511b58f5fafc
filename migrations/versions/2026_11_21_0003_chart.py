"""Chart of accounts, categories, tax codes, account mappings and sync state."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import company_fk, company_id, timestamps

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        company_id(),
        sa.Column("account_number", sa.Integer(), nullable=False),
        sa.Column("account_name", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("tax_code", sa.String(length=32), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("inactive_reason", sa.String(length=32), nullable=True),
        *timestamps(),
        company_fk("categories"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint(
            "company_id", "account_number", name=op.f("uq_categories_company_id_account_number")
        ),
    )
    op.create_table(
        "chart_syncs",
        company_id(),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("accounting_years", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        company_fk("chart_syncs"),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_chart_syncs")),
    )
    op.create_table(
        "company_settings",
        company_id(),
        sa.Column("deposit_account", sa.Integer(), nullable=True),
        sa.Column("out_of_pocket_account", sa.Integer(), nullable=True),
        sa.Column("reimbursement_account", sa.Integer(), nullable=True),
        sa.Column("top_up_account", sa.Integer(), nullable=True),
        *timestamps(),
        company_fk("company_settings"),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_settings")),
    )
    op.create_table(
        "dinero_accounts",
        company_id(),
        sa.Column("account_number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("vat_code", sa.String(length=32), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("is_entry", sa.Boolean(), nullable=False),
        sa.Column("is_purchase", sa.Boolean(), nullable=False),
        sa.Column("is_deposit", sa.Boolean(), nullable=False),
        sa.Column("is_default_deposit", sa.Boolean(), nullable=False),
        sa.Column("hidden_in_dinero", sa.Boolean(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("bank_registration_number", sa.String(length=32), nullable=True),
        sa.Column("bank_account_number", sa.String(length=64), nullable=True),
        sa.Column("bank_iban_number", sa.String(length=64), nullable=True),
        *timestamps(),
        company_fk("dinero_accounts"),
        sa.PrimaryKeyConstraint("company_id", "account_number", name=op.f("pk_dinero_accounts")),
    )
    op.create_table(
        "tax_codes",
        company_id(),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        *timestamps(),
        company_fk("tax_codes"),
        sa.PrimaryKeyConstraint("company_id", "code", name=op.f("pk_tax_codes")),
    )


def downgrade() -> None:
    op.drop_table("tax_codes")
    op.drop_table("dinero_accounts")
    op.drop_table("company_settings")
    op.drop_table("chart_syncs")
    op.drop_table("categories")

"""History of account mappings and categories (who changed what, effective when), and the
explanation stored with each exported item's lines.

The mappings and categories already stored become each one's first history row (`backfill`,
effective from the row's last update, nobody named), so an explanation given after the upgrade
can still say which setting was used and since when.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import cascade_fk, company_fk, company_id, timestamp

revision = "0011"
down_revision = "0010"

# The mappings and categories found become their first history rows (effective from their last
# update, nobody named).
_BACKFILL_MAPPINGS = """
INSERT INTO settings_history (company_id, kind, setting, changes, state, changed_at, source)
SELECT s.company_id, 'mapping', m.key,
       jsonb_build_object(m.key, jsonb_build_object('from', NULL, 'to', m.value)),
       m.state, s.updated_at, 'backfill'
FROM company_settings AS s,
     LATERAL (
         SELECT jsonb_build_object(
             'deposit_account', s.deposit_account,
             'out_of_pocket_account', s.out_of_pocket_account,
             'reimbursement_account', s.reimbursement_account,
             'top_up_account', s.top_up_account
         ) AS state
     ) AS whole,
     LATERAL (SELECT key, value, whole.state FROM jsonb_each(whole.state)) AS m
WHERE m.value <> 'null'::jsonb
"""

_BACKFILL_CATEGORIES = """
INSERT INTO settings_history (company_id, kind, category_id, changes, state, changed_at, source)
SELECT company_id, 'category', id, '{}'::jsonb,
       jsonb_build_object(
           'account_number', account_number, 'account_name', account_name, 'name', name,
           'tax_code', tax_code, 'hidden', hidden, 'active', active,
           'inactive_reason', inactive_reason
       ),
       updated_at, 'backfill'
FROM categories
"""


def upgrade() -> None:
    op.create_table(
        "settings_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        company_id(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("setting", sa.String(length=64), nullable=True),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        timestamp("changed_at"),
        sa.Column("changed_by", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        cascade_fk("settings_history", "category_id", "categories"),
        company_fk("settings_history"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings_history")),
    )
    op.create_index(
        "ix_settings_history_company_changed",
        "settings_history",
        ["company_id", "changed_at", "id"],
    )
    op.create_index(
        "ix_settings_history_category_changed",
        "settings_history",
        ["category_id", "changed_at", "id"],
    )
    op.create_table(
        "export_explanations",
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        timestamp("recorded_at"),
        cascade_fk("export_explanations", "item_id", "export_items"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_export_explanations")),
    )
    op.execute(_BACKFILL_MAPPINGS)
    op.execute(_BACKFILL_CATEGORIES)


def downgrade() -> None:
    op.drop_table("export_explanations")
    op.drop_index("ix_settings_history_category_changed", table_name="settings_history")
    op.drop_index("ix_settings_history_company_changed", table_name="settings_history")
    op.drop_table("settings_history")

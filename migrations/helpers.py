"""Column and constraint shapes the revisions share.

Each helper builds exactly the DDL the revisions spelled out before it existed, so the SQL that
`alembic upgrade head --sql` emits is unchanged. A revision imports these instead of repeating them;
change a helper only in a way that keeps every existing revision's SQL the same.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op


def company_id() -> sa.Column[str]:
    """The owning company's id: `company_id VARCHAR(128) NOT NULL`."""
    return sa.Column("company_id", sa.String(length=128), nullable=False)


def timestamp(name: str) -> sa.Column[datetime]:
    """A `TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL` column."""
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def timestamps() -> tuple[sa.Column[datetime], sa.Column[datetime]]:
    """`created_at` and `updated_at`, both defaulting to now()."""
    return timestamp("created_at"), timestamp("updated_at")


def cascade_fk(
    table: str, column: str, target: str, target_column: str = "id"
) -> sa.ForeignKeyConstraint:
    """`column` → `target.target_column`, deleted with its target,
    named fk_<table>_<column>_<target>.
    """
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.{target_column}"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def company_fk(table: str) -> sa.ForeignKeyConstraint:
    """`company_id` → `companies.id`, deleted with the company."""
    return cascade_fk(table, "company_id", "companies")


# export_items' outbox trigger as revision 0007 creates it; 0012 puts it back unchanged around the
# rebuild of the status type it reads. A revision that changes the trigger spells out its own.
EXPORT_ITEMS_OUTBOX_TRIGGER = """
CREATE TRIGGER export_items_outbox
AFTER UPDATE OF status, dinero_changes, late_receipt_status ON export_items
FOR EACH ROW
WHEN (
    OLD.status IS DISTINCT FROM NEW.status
    OR OLD.dinero_changes IS DISTINCT FROM NEW.dinero_changes
    OR OLD.late_receipt_status IS DISTINCT FROM NEW.late_receipt_status
)
EXECUTE FUNCTION export_items_outbox()
"""

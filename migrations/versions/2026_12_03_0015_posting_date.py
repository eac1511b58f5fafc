"""Posting date: `export_items.posting_date`, the date an item was last sent to Dinero with (its
own date, or the first open day after the lock date), so a reversal finds the entry it posted.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.add_column("export_items", sa.Column("posting_date", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("export_items", "posting_date")

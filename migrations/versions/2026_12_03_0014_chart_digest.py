"""Chart digest: `chart_syncs.chart_digest` (SHA-256 of the chart Dinero last sent) and
`chart_syncs.compared_at` (when a sync last compared it with the stored rows), so a sync that
reads the same chart again skips reading and comparing the stored one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.add_column("chart_syncs", sa.Column("chart_digest", sa.String(length=64), nullable=True))
    op.add_column(
        "chart_syncs", sa.Column("compared_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("chart_syncs", "compared_at")
    op.drop_column("chart_syncs", "chart_digest")

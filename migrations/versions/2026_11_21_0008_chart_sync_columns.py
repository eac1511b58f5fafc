"""Chart syncs: drop two columns nothing read (the request count is a constant, the
organization is the connection's).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.drop_column("chart_syncs", "requests")
    op.drop_column("chart_syncs", "organization_id")


def downgrade() -> None:
    op.add_column("chart_syncs", sa.Column("organization_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "chart_syncs",
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
    )

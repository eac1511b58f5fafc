"""Chart syncs: drop two columns nothing read (the request count is a constant, the
organization is the connection's).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 02:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("chart_syncs", "requests")
    op.drop_column("chart_syncs", "organization_id")


def downgrade() -> None:
    op.add_column("chart_syncs", sa.Column("organization_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "chart_syncs",
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
    )

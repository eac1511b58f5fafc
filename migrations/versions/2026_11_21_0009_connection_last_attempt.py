"""Dinero connections: the last refused attempt to connect (code, words, Dinero's own text,
when), kept until an attempt succeeds.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column(
        "dinero_connections",
        sa.Column("attempt_failed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "dinero_connections",
        sa.Column("attempt_problem_code", sa.String(length=64), nullable=True),
    )
    op.add_column(
        "dinero_connections", sa.Column("attempt_problem_message", sa.Text(), nullable=True)
    )
    op.add_column(
        "dinero_connections", sa.Column("attempt_dinero_message", sa.Text(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("dinero_connections", "attempt_dinero_message")
    op.drop_column("dinero_connections", "attempt_problem_message")
    op.drop_column("dinero_connections", "attempt_problem_code")
    op.drop_column("dinero_connections", "attempt_failed_at")

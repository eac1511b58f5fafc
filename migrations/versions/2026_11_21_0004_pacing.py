"""Per-organization request pacing: a sliding window of request slots."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "dinero_request_slots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lane", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dinero_request_slots")),
    )
    op.create_index(
        op.f("ix_dinero_request_slots_organization_id_slot_at"),
        "dinero_request_slots",
        ["organization_id", "slot_at"],
        unique=False,
    )
    # The even-spacing "next slot" becomes the pause after a 429 (a value in the future is at
    # most one penalty away, so keeping it as a pause is harmless).
    op.alter_column("dinero_rate_budgets", "next_slot_at", new_column_name="paused_until")


def downgrade() -> None:
    op.alter_column("dinero_rate_budgets", "paused_until", new_column_name="next_slot_at")
    op.drop_index(
        op.f("ix_dinero_request_slots_organization_id_slot_at"), table_name="dinero_request_slots"
    )
    op.drop_table("dinero_request_slots")

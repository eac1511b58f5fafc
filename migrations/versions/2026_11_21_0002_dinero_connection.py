"""Dinero connections, pending OAuth approvals and the shared per-organization request budget."""

import sqlalchemy as sa
from alembic import op

from migrations.helpers import company_fk, company_id, timestamp, timestamps

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "dinero_rate_budgets",
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("next_slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_dinero_rate_budgets")),
    )
    op.create_table(
        "dinero_connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        company_id(),
        sa.Column(
            "status",
            sa.Enum(
                "not_connected", "pending", "connected", "reauth_required", name="connection_status"
            ),
            nullable=False,
        ),
        sa.Column("method", sa.Enum("oauth", "api_key", name="connection_method"), nullable=True),
        sa.Column("organization_id", sa.BigInteger(), nullable=True),
        sa.Column("organization_name", sa.String(length=255), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("problem_code", sa.String(length=64), nullable=True),
        sa.Column("problem_message", sa.Text(), nullable=True),
        sa.Column("access_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_enc", sa.LargeBinary(), nullable=True),
        sa.Column("api_key_enc", sa.LargeBinary(), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_generation", sa.BigInteger(), server_default="0", nullable=False),
        *timestamps(),
        company_fk("dinero_connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dinero_connections")),
        sa.UniqueConstraint("company_id", name=op.f("uq_dinero_connections_company_id")),
    )
    op.create_table(
        "dinero_oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        company_id(),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("code_verifier_enc", sa.LargeBinary(), nullable=False),
        sa.Column("confirm_switch", sa.Boolean(), nullable=False),
        timestamp("created_at"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        company_fk("dinero_oauth_states"),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_dinero_oauth_states")),
    )


def downgrade() -> None:
    op.drop_table("dinero_oauth_states")
    op.drop_table("dinero_connections")
    op.drop_table("dinero_rate_budgets")
    sa.Enum(name="connection_method").drop(op.get_bind(), checkfirst=True)
    sa.Enum(name="connection_status").drop(op.get_bind(), checkfirst=True)

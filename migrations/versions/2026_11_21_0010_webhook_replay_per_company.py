"""Exports: a webhook-id is unique per company, not across all companies (replay protection
scoped to the company; the same id with another body is refused by the intake, 409).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 06:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint(
        op.f("uq_exports_company_id_webhook_id"), "exports", ["company_id", "webhook_id"]
    )
    op.drop_constraint(op.f("uq_exports_webhook_id"), "exports", type_="unique")


def downgrade() -> None:
    # Fails if two companies have stored the same webhook-id since the upgrade.
    op.create_unique_constraint(op.f("uq_exports_webhook_id"), "exports", ["webhook_id"])
    op.drop_constraint(op.f("uq_exports_company_id_webhook_id"), "exports", type_="unique")

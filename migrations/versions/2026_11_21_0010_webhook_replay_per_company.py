"""Exports: a webhook-id is unique per company, not across all companies (replay protection
scoped to the company; the same id with another body is refused by the intake, 409).
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_unique_constraint(
        op.f("uq_exports_company_id_webhook_id"), "exports", ["company_id", "webhook_id"]
    )
    op.drop_constraint(op.f("uq_exports_webhook_id"), "exports", type_="unique")


def downgrade() -> None:
    # Fails if two companies have stored the same webhook-id since the upgrade.
    op.create_unique_constraint(op.f("uq_exports_webhook_id"), "exports", ["webhook_id"])
    op.drop_constraint(op.f("uq_exports_company_id_webhook_id"), "exports", type_="unique")

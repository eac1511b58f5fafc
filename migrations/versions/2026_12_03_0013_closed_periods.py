"""Closed periods: `company_settings.books_closed_through` (the admin's lock date: nothing dated on
or before it is exported as dated) with `closed_period_policy` (`hold` such items, or post them on
`first_open_day`), and `export_closed_years` (accounting years Dinero refused to book into
as closed, remembered so the items dated in them wait without sending Dinero another request).
"""

import sqlalchemy as sa
from alembic import op

from migrations.helpers import company_fk, company_id

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.add_column("company_settings", sa.Column("books_closed_through", sa.Date(), nullable=True))
    op.add_column(
        "company_settings",
        sa.Column(
            "closed_period_policy",
            sa.String(length=16),
            server_default="hold",
            nullable=False,
        ),
    )
    op.create_table(
        "export_closed_years",
        company_id(),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dinero_message", sa.Text(), nullable=True),
        company_fk("export_closed_years"),
        sa.PrimaryKeyConstraint("company_id", "first_day", name=op.f("pk_export_closed_years")),
    )


def downgrade() -> None:
    op.drop_table("export_closed_years")
    op.drop_column("company_settings", "closed_period_policy")
    op.drop_column("company_settings", "books_closed_through")

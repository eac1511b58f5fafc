"""Foundation: companies, and procrastinate's job queue schema (3.10.0)."""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

from migrations.helpers import timestamps

revision = "0001"
down_revision = None

PROCRASTINATE_SCHEMA = (
    Path(__file__).resolve().parent.parent / "sql" / ("procrastinate-3.10.0-schema.sql")
)


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.String(length=128), nullable=False),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
    )
    # The job queue's tables, functions and triggers, exactly as procrastinate ships them.
    op.execute(PROCRASTINATE_SCHEMA.read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
            procrastinate_job_to_defer_v1 CASCADE;
        """
    )
    op.execute(
        """
        DO $$
        DECLARE fn record;
        BEGIN
            FOR fn IN
                SELECT p.oid::regprocedure AS signature
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
            LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || fn.signature || ' CASCADE';
            END LOOP;
        END $$;
        """
    )
    op.drop_table("companies")

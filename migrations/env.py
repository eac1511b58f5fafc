"""Alembic environment: synchronous psycopg 3, models from every domain, one migrator at a time."""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool, text

from app import registry
from app.db import Base, sqlalchemy_url

registry.load()

config = context.config
target_metadata = Base.metadata

# Any constant; held for the duration of a migration run so parallel starts queue up.
MIGRATION_LOCK_ID = 727_384_001


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or run `dinero-bridge migrate`)")
    return sqlalchemy_url(url)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # procrastinate's tables come from its own schema file (see the first revision).
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations(**target: Any) -> None:
    """Run the migrations against `target` (a URL for SQL output, or a connection), comparing
    column types and leaving procrastinate's tables out in either mode."""
    context.configure(
        target_metadata=target_metadata, include_name=include_name, compare_type=True, **target
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    run_migrations(url=_url(), literal_binds=True)


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            run_migrations(connection=connection)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

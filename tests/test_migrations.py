"""The migrations build the schema from nothing, match the models, and go back down cleanly."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from alembic import command

from app.db import libpq_url
from app.migrations_util import alembic_config, head_revision


def _tables(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_check_downgrade_upgrade(make_database: Callable[[], str]) -> None:
    url = make_database()
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert {"companies", "procrastinate_jobs", "alembic_version"} <= _tables(url)
    command.check(config)  # raises when the models and the migrations differ
    command.downgrade(config, "base")
    assert _tables(url) <= {"alembic_version"}
    command.upgrade(config, "head")
    with psycopg.connect(libpq_url(url)) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == (head_revision(),)

"""The one place that loads every model and every job of the service.

A process that flushes a model must have imported the module of every table that model's
foreign keys point at, and a worker can only run a job whose task module registered it. So
nothing relies on what a command happens to import: `serve` (through `create_app`), `worker`
and Alembic's environment all call `load()` before doing anything else, and a test checks
that every `models.py` and `tasks.py` under `app/` is listed here.
"""

from __future__ import annotations

import importlib
from typing import Final

from sqlalchemy.orm import configure_mappers

MODEL_MODULES: Final[tuple[str, ...]] = (
    "app.companies.models",
    "app.connection.models",
    "app.chart.models",
    "app.datasources.models",
    "app.exports.models",
    "app.follow_up.models",
    "app.outbox.models",
    "app.history.models",
    "app.preview.models",
    "app.reversals.models",
)
"""Every module that defines tables on `app.db.Base`."""

TASK_MODULES: Final[tuple[str, ...]] = (
    "app.ops.tasks",
    "app.chart.tasks",
    "app.datasources.tasks",
    "app.exports.tasks",
    "app.follow_up.tasks",
    "app.outbox.tasks",
    "app.reversals.tasks",
)
"""Every module that registers jobs on `app.jobs.job_app`."""


def load_models() -> None:
    """Import every model module, so the metadata and the mappers are complete."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    configure_mappers()


def load() -> None:
    """Import every model and every task module (idempotent, cheap after the first call)."""
    load_models()
    for module in TASK_MODULES:
        importlib.import_module(module)

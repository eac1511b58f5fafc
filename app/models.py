"""Imports every domain's models so the metadata is complete (Alembic, tests)."""

from __future__ import annotations

import importlib

MODEL_MODULES: tuple[str, ...] = (
    "app.companies.models",
    "app.connection.models",
    "app.chart.models",
    "app.datasources.models",
    "app.exports.models",
    "app.follow_up.models",
    "app.outbox.models",
)


def import_all_models() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)

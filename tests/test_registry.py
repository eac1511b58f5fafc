"""One place loads every model and every job: nothing a process needs is imported by chance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app import registry

APP = Path(__file__).resolve().parents[1] / "app"


def _modules(marker: str) -> set[str]:
    """The service's modules (the sandbox is not the service) whose source has `marker`."""
    return {
        ".".join(path.relative_to(APP.parent).with_suffix("").parts)
        for path in APP.rglob("*.py")
        if "sandbox" not in path.parts and marker in path.read_text()
    }


def test_every_module_with_tables_or_jobs_is_listed() -> None:
    assert set(registry.MODEL_MODULES) == _modules("mapped_column(") - {"app.db"}  # the base
    assert set(registry.TASK_MODULES) == _modules("@job_app.task(")


def test_a_fresh_process_that_loads_the_registry_can_flush_every_table() -> None:
    """What `worker` does first: in a new interpreter, every foreign key resolves and every job
    the service defers is registered (the worker once failed on chart_syncs → companies)."""
    script = """
from app import registry
registry.load()
from app.db import Base
from app.jobs import job_app
for table in Base.metadata.sorted_tables:
    for fk in table.foreign_keys:
        fk.column  # raises NoReferencedTableError when the target's module was not imported
print(len(Base.metadata.tables), sorted(job_app.tasks))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    tables, tasks = done.stdout.split(" ", 1)
    assert int(tables) >= 15
    for name in (
        "chart.sync",
        "chart.schedule",
        "exports.run",
        "follow_up.run",
        "follow_up.schedule",
        "outbox.deliver",
        "outbox.tick",
        "data_sources.refresh",
        "data_sources.schedule",
    ):
        assert f"'{name}'" in tasks

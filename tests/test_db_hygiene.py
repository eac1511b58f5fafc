"""The database's two leaks: bound values in error messages (and so in error logs), and an
embedded PostgreSQL that a killed process left running for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import HANDLES_FILE, forget_dead_handles


async def test_an_error_names_the_statement_but_never_the_values_bound_to_it(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError) as failed:
            await conn.execute(
                text("SELECT CAST(:name AS text), 1 / 0"), {"name": "Mette Jensen, CPR 010190-1234"}
            )

    message = str(failed.value)
    assert "division by zero" in message
    assert "Mette" not in message
    assert "010190" not in message
    assert "hidden" in message


def _exited_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_processes_that_died_without_saying_so_are_forgotten(tmp_path: Path) -> None:
    me = psutil.Process()
    handles = tmp_path / HANDLES_FILE
    dead = _exited_pid()
    handles.write_text(json.dumps([dead, os.getpid()]))
    # Written after this process started: it is a real user, the exited one is not.
    os.utime(handles, (time.time(), time.time()))
    assert me.create_time() <= handles.stat().st_mtime

    assert forget_dead_handles(tmp_path) == [dead]
    assert json.loads(handles.read_text()) == [os.getpid()]
    assert forget_dead_handles(tmp_path) == []  # nothing more to forget


def test_a_pid_reused_by_a_process_started_after_the_list_was_written_is_forgotten(
    tmp_path: Path,
) -> None:
    handles = tmp_path / HANDLES_FILE
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        handles.write_text(json.dumps([stranger.pid]))
        # The list is older than the process now holding that pid: another process's pid.
        written = psutil.Process(stranger.pid).create_time() - 10
        os.utime(handles, (written, written))

        assert forget_dead_handles(tmp_path) == [stranger.pid]
        assert json.loads(handles.read_text()) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_no_list_or_a_damaged_one_is_nothing_to_forget(tmp_path: Path) -> None:
    assert forget_dead_handles(tmp_path) == []
    (tmp_path / HANDLES_FILE).write_text("not json")
    assert forget_dead_handles(tmp_path) == []

"""CI: `alembic upgrade head` then `alembic check` on an empty embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pgserver

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC = str(Path(sys.executable).parent / "alembic")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ci-alembic-") as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        server.psql("CREATE DATABASE ci_check;")
        env = {**os.environ, "DATABASE_URL": server.get_uri("ci_check")}
        try:
            steps = (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"])
            for args in steps:
                sys.stdout.write(f"+ alembic {' '.join(args)}\n")
                sys.stdout.flush()
                subprocess.run([ALEMBIC, *args], cwd=ROOT, env=env, check=True)  # noqa: S603
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

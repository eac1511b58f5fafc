"""The production image holds the service and not the stand-in Dinero.

The image is built the way the `Dockerfile` builds it: its build stage's `COPY` sources into an
empty directory, then its `uv sync` commands into a fresh environment. There is no Docker engine
here, so the steps are replayed with the same uv and lock file; what lands in the environment and
in the directory is what the image holds.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def _build_stage() -> list[list[str]]:
    """The build stage's COPY and RUN instructions, in order, as argument lists."""
    steps: list[list[str]] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "FROM" and steps:
            break  # the runtime stage copies from the build stage only
        if words[0] in {"COPY", "RUN"}:
            steps.append(words)
    return steps


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if UV is None:
        pytest.skip("uv is not installed next to this interpreter")
    srv = tmp_path_factory.mktemp("srv")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")},
        "UV_PROJECT_ENVIRONMENT": str(srv / "venv"),
        "UV_LINK_MODE": "copy",
        "UV_PYTHON": sys.executable,
    }
    for step in _build_stage():
        if step[0] == "COPY":
            *sources, target = step[1:]
            for source in sources:
                origin, destination = ROOT / source, srv / target
                if origin.is_dir():
                    shutil.copytree(origin, destination)
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, destination / origin.name)
        elif step[1:3] == ["uv", "sync"]:
            subprocess.run([UV, *step[2:]], cwd=srv, env=env, check=True, capture_output=True)
    return srv


def test_the_dockerfile_installs_the_service_with_uv() -> None:
    steps = [" ".join(step) for step in _build_stage()]
    assert any("uv sync --frozen --no-dev" in step for step in steps), steps
    assert any(step.startswith("COPY app ") for step in steps), steps


def test_the_image_holds_no_sandbox_module(image: Path) -> None:
    sandbox_files = [
        path
        for path in image.rglob("*")
        if "dinero_sandbox" in path.parts or path.name.startswith("dinero_sandbox")
    ]
    assert sandbox_files == []
    python = image / "venv" / "bin" / "python"
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, app.main; "
            "print(importlib.util.find_spec('dinero_sandbox') is None)",
        ],
        cwd=image,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"


def test_the_image_says_what_to_do_without_the_sandbox(image: Path) -> None:
    result = subprocess.run(
        [str(image / "venv" / "bin" / "dinero-bridge"), "sandbox", "--port", "1"],
        cwd=image,
        env={"PATH": os.environ["PATH"], "HOME": str(image)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "dinero-sandbox" in result.stderr
    assert "DINERO_API_URL" in result.stderr

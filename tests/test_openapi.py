"""openapi.yaml, which other teams build against, is exactly the app's generated schema."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.openapi import render, schema


def test_committed_openapi_matches_the_app(repo_root: Path) -> None:
    committed = yaml.safe_load((repo_root / "openapi.yaml").read_text(encoding="utf-8"))
    assert committed == yaml.safe_load(render()), (
        "openapi.yaml is out of date: run `./dev run openapi > openapi.yaml`"
    )


def test_every_error_response_is_documented_as_problem_json() -> None:
    document = schema()
    assert "Problem" in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if str(status).startswith(("4", "5")):
                    assert "application/problem+json" in response.get("content", {}), (
                        f"{method.upper()} {path} {status} is not documented as problem+json"
                    )

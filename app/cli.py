"""The `dinero-bridge` command line: serve, worker, migrate, sandbox (and dev-token)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import structlog
import typer
from pydantic import ValidationError

from app.config import ConfigurationError, Settings
from app.devsandbox import SandboxNotInstalled, sandbox_app, sandbox_installed
from app.logging import configure_logging
from app.runtime import Runtime, resolve

cli = typer.Typer(
    name="dinero-bridge",
    help="Expense platform ↔ Dinero integration service.",
    no_args_is_help=True,
    add_completion=False,
)
log = structlog.get_logger("app.cli")


def _load_settings() -> Settings:
    """Settings from the environment; a value that is not valid ends the command (exit 2)."""
    try:
        return Settings()
    except ValidationError as exc:
        # Only the field and the reason: the input may be a secret.
        reasons = "\n  - ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        typer.echo(f"error: the configuration is not valid:\n  - {reasons}", err=True)
        raise typer.Exit(code=2) from None


def _settings() -> Settings:
    settings = _load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _runtime(settings: Settings, *, public_url: str) -> Runtime:
    """Resolve configuration, starting the embedded PostgreSQL when no DATABASE_URL is given."""
    try:
        if settings.is_production:
            # Refuse before starting anything.
            return resolve(settings, database_url=None, public_url=public_url)
        embedded = None
        if settings.database_url is None:
            from app.db import start_embedded_postgres

            embedded = start_embedded_postgres(settings.data_dir)
        runtime = resolve(settings, database_url=embedded, public_url=public_url)
    except ConfigurationError as exc:
        log.error("configuration_refused", reason=str(exc))
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if runtime.dinero.sandbox and not sandbox_installed():
        reason = str(SandboxNotInstalled.missing())
        log.error("configuration_refused", reason=reason)
        typer.echo(f"error: {reason}", err=True)
        raise typer.Exit(code=2)
    for choice in runtime.defaults_chosen:
        log.warning("development_default", choice=choice)
    return runtime


def _migrate(runtime: Runtime) -> None:
    from app.db import redacted
    from app.migrations_util import upgrade_to_head

    url = runtime.database_url.get_secret_value()
    log.info("migrating", database=redacted(url))
    upgrade_to_head(url)
    log.info("migrated")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run a job worker in this process.")
    ] = False,
) -> None:
    """Run the HTTP API (plus an in-process job worker unless --no-worker)."""
    import uvicorn

    from app.main import create_app

    settings = _settings()
    public_url = (settings.public_url or f"http://{host}:{port}").rstrip("/")
    runtime = _runtime(settings, public_url=public_url)
    if not settings.is_production:
        _migrate(runtime)
    app = create_app(runtime, run_worker=not no_worker)
    log.info(
        "serving",
        url=public_url,
        docs=f"{public_url}/docs",
        worker="none" if no_worker else "in-process",
        dinero=runtime.dinero.api_url,
    )
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default WORKER_CONCURRENCY).")
    ] = None,
) -> None:
    """Run a job worker only (production runs several)."""
    from app import jobs, services
    from app.db import libpq_url

    settings = _settings()
    runtime = _runtime(settings, public_url=(settings.public_url or "http://127.0.0.1:8000"))

    async def run() -> None:
        async with services.started(runtime) as shared:
            pool = jobs.create_job_pool(libpq_url(runtime.database_url.get_secret_value()))
            await jobs.open_jobs(pool)
            try:
                log.info("worker_started", mode="standalone")
                await jobs.run_worker(
                    additional_context=services.worker_context(shared),
                    concurrency=concurrency or settings.worker_concurrency,
                    name="standalone",
                    heartbeat_seconds=settings.worker_heartbeat_seconds,
                    poll_seconds=settings.worker_poll_seconds,
                )
            finally:
                await jobs.close_jobs(pool)
                log.info("worker_stopped")

    asyncio.run(run())


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest revision."""
    settings = _settings()
    runtime = _runtime(settings, public_url=(settings.public_url or "http://127.0.0.1:8000"))
    _migrate(runtime)


@cli.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Run the stand-in Dinero server alone."""
    import uvicorn

    settings = _settings()
    try:
        application = sandbox_app()
    except SandboxNotInstalled as exc:
        raise typer.BadParameter(str(exc)) from exc
    log.info("sandbox_serving", url=f"http://{host}:{port}", env=settings.app_env)
    uvicorn.run(application, host=host, port=port, log_config=None)


@cli.command("dev-token")
def dev_token(
    company: Annotated[str, typer.Option(help="The company_id claim.")] = "demo",
    role: Annotated[str, typer.Option(help="admin or member.")] = "admin",
    hours: Annotated[int, typer.Option(help="Lifetime in hours.")] = 8,
) -> None:
    """Print a bearer token for local use (development only)."""
    from pydantic import SecretStr

    from app.auth import issue_token
    from app.runtime import load_dev_secrets

    settings = _load_settings()
    if settings.is_production:
        typer.echo("error: dev-token is for development only", err=True)
        raise typer.Exit(code=2)
    if role not in ("admin", "member"):
        typer.echo("error: --role must be admin or member", err=True)
        raise typer.Exit(code=2)
    if not 0 < hours * 3600 <= settings.auth_jwt_max_lifetime_seconds:
        typer.echo(
            "error: --hours must be more than 0 and at most AUTH_JWT_MAX_LIFETIME_SECONDS "
            f"({settings.auth_jwt_max_lifetime_seconds} s); longer tokens are refused",
            err=True,
        )
        raise typer.Exit(code=2)
    secret = settings.auth_jwt_secret
    if secret is None:
        secret = SecretStr(load_dev_secrets(settings.data_dir)[0]["auth_jwt_secret"])
    chosen: Literal["admin", "member"] = "admin" if role == "admin" else "member"
    typer.echo(
        issue_token(
            secret=secret,
            company_id=company,
            role=chosen,
            ttl_seconds=hours * 3600,
            audience=settings.auth_jwt_audience,
            issuer=settings.auth_jwt_issuer,
        )
    )


@cli.command()
def openapi() -> None:
    """Print the service's OpenAPI document as YAML."""
    from app.openapi import render

    typer.echo(render(), nl=False)


def main() -> None:
    cli(prog_name="dinero-bridge")


if __name__ == "__main__":
    main()

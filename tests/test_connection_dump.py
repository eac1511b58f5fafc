"""A real `pg_dump` of the database gives away no Dinero secret.

Companies are connected the way users connect them (an API key, an OAuth approval on the
stand-in Dinero, and an approval still pending), in a committed database of this module's own;
then `pg_dump` dumps it and the text is searched for every secret the service handled: access
tokens, the refresh token, the API key, the PKCE code verifiers and the OAuth state. A secret
must not appear in plain text, as bytea hex (how pg_dump writes binary columns) or base64 (at any
alignment, in either alphabet), while the encrypted columns are in the dump and decrypt with the
service's key.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dinero_sandbox import API_KEY
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.connection.models import OAuthState
from app.crypto import TokenCipher
from app.db import libpq_url
from tests.test_connection_sandbox import (
    World,
    connect_with_api_key,
    connect_with_oauth,
    dinero_world,
    query_of,
    start_oauth,
)


def _pg_dump_candidates() -> list[str]:
    """pg_dump binaries: the one shipped in the pgserver package (the embedded test server's
    own), and the one on PATH; the PATH one first when the tests use an outside server."""
    bundled: str | None = None
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "pginstall" / "bin" / "pg_dump"
        bundled = str(path) if path.is_file() else None
    on_path = shutil.which("pg_dump")
    ordered = [on_path, bundled] if os.environ.get("TEST_DATABASE_URL") else [bundled, on_path]
    return [c for c in ordered if c is not None]


async def _run(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def _pg_dump_for(server_major: int) -> str | None:
    """A pg_dump that can dump this server (pg_dump refuses servers newer than itself)."""
    for candidate in _pg_dump_candidates():
        code, out, _ = await _run(candidate, "--version")
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if code == 0 and match and int(match.group(1)) >= server_major:
            return candidate
    return None


async def pg_dump(url: str, engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        version = (await conn.execute(text("SHOW server_version_num"))).scalar_one()
    binary = await _pg_dump_for(int(version) // 10000)
    if binary is None:
        pytest.skip(f"no pg_dump able to dump a PostgreSQL {int(version) // 10000} server")
    code, dump, err = await _run(
        binary, "--format=plain", "--no-owner", "--no-privileges", f"--dbname={libpq_url(url)}"
    )
    assert code == 0, err
    return dump


def encodings(secret: str) -> dict[str, str]:
    """Ways a secret could sit in a dump's text: plain, bytea hex, and base64 of it wherever it
    starts inside a longer base64 text (3 alignments x 2 alphabets; only the characters
    determined by the secret alone are kept)."""
    data = secret.encode()
    found = {"plain": secret, "hex": data.hex()}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        core = encoded[4 if offset else 0 : -4]
        found[f"base64+{offset}"] = core
        found[f"base64url+{offset}"] = core.replace("+", "-").replace("/", "_")
    return found


def copy_rows(dump: str, table: str) -> list[dict[str, str]]:
    """The rows of a table's COPY block, as column → text value."""
    match = re.search(
        rf"^COPY public\.{table} \((?P<columns>[^)]*)\) FROM stdin;\n(?P<rows>.*?)^\\\.$",
        dump,
        flags=re.MULTILINE | re.DOTALL,
    )
    assert match, f"no data for {table} in the dump"
    columns = [c.strip().strip('"') for c in match.group("columns").split(",")]
    return [
        dict(zip(columns, line.split("\t"), strict=True)) for line in match["rows"].splitlines()
    ]


def bytea(value: str) -> bytes:
    """A bytea value as COPY writes it (`\\\\x` and hex)."""
    assert value.startswith("\\\\x"), value
    return bytes.fromhex(value[3:])


def decrypted(cipher: TokenCipher, value: str) -> str:
    return cipher.decrypt(bytea(value)).get_secret_value()


@pytest.fixture
async def world(committed: tuple[str, AsyncEngine]) -> AsyncIterator[World]:
    url, engine = committed
    async with dinero_world(url, engine) as w:
        yield w


async def test_database_dump_holds_no_secret_in_readable_form(
    world: World, committed: tuple[str, AsyncEngine]
) -> None:
    url, engine = committed
    cipher = world.gateway.cipher
    by_key, by_oauth, pending = world.new_company(), world.new_company(), world.new_company()

    assert (await connect_with_api_key(world, by_key)).status_code == 200
    [password_grant] = world.wire.grants("password")
    approval_url = await connect_with_oauth(world, by_oauth)
    [code_grant] = world.wire.grants("authorization_code")
    pending_url = await start_oauth(world, pending)  # approval not finished yet
    async with AsyncSession(engine) as session:
        pending_state = (
            await session.execute(select(OAuthState).where(OAuthState.company_id == pending))
        ).scalar_one()
        pending_verifier = cipher.decrypt(pending_state.code_verifier_enc).get_secret_value()

    secrets = {
        "API key": API_KEY,
        "API-key access token": password_grant.body["access_token"],
        "OAuth access token": code_grant.body["access_token"],
        "refresh token": code_grant.body["refresh_token"],
        "PKCE code verifier (used)": code_grant.form["code_verifier"],
        "PKCE code verifier (pending)": pending_verifier,
        "OAuth state (used)": query_of(approval_url)["state"],
        "OAuth state (pending)": query_of(pending_url)["state"],
    }
    if "id_token" in code_grant.body:
        secrets["ID token"] = code_grant.body["id_token"]
    assert all(len(s) >= 20 for s in secrets.values()), secrets

    dump = await pg_dump(url, engine)

    leaks = [
        f"{name} as {form}"
        for name, secret in secrets.items()
        for form, encoded in encodings(secret).items()
        if encoded in dump
    ]
    assert leaks == []

    # The dump does hold the connections, their secrets encrypted under the service's key.
    connections = {row["company_id"]: row for row in copy_rows(dump, "dinero_connections")}
    key_row, oauth_row = connections[by_key], connections[by_oauth]
    assert key_row["status"] == oauth_row["status"] == "connected"
    assert decrypted(cipher, key_row["api_key_enc"]) == API_KEY
    assert decrypted(cipher, key_row["access_token_enc"]) == password_grant.body["access_token"]
    assert key_row["refresh_token_enc"] == "\\N"
    assert decrypted(cipher, oauth_row["access_token_enc"]) == code_grant.body["access_token"]
    assert decrypted(cipher, oauth_row["refresh_token_enc"]) == code_grant.body["refresh_token"]
    states = {row["company_id"]: row for row in copy_rows(dump, "dinero_oauth_states")}
    assert (
        decrypted(cipher, states[by_oauth]["code_verifier_enc"])
        == secrets["PKCE code verifier (used)"]
    )
    assert decrypted(cipher, states[pending]["code_verifier_enc"]) == pending_verifier

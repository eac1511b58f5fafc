"""`GET /console` and its static files, under a strict Content-Security-Policy.

The page is a single-page app (Preact + htm, vendored under `static/vendor/`) that only calls
the public REST API of this same origin with the bearer token it keeps in `sessionStorage`.
Nothing here reads a token: the server only hands out files.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from app.errors import NotFound

STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
"""No inline script or style, nothing from another origin, never framed."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _read(path: Path) -> Asset:
    media_type = _TYPES.get(path.suffix) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    body = path.read_bytes()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return Asset(body=body, media_type=media_type, etag=etag)


def _load_assets() -> dict[str, Asset]:
    """Every file under static/ except the page itself, read once (they ship with the code)."""
    return {
        path.relative_to(STATIC).as_posix(): _read(path)
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.name != "index.html"
    }


ASSETS = _load_assets()
"""The files that can be asked for: only these names (no path is ever joined from a request).
Browsers revalidate them on every load (ETag, `no-cache`), so a new release is never mixed with
cached old files; in development each is read again, so an edit shows on reload."""
_PAGE = (STATIC / "index.html").read_text(encoding="utf-8")

router = APIRouter(include_in_schema=False)


def _page(environment: str) -> str:
    page = (STATIC / "index.html").read_text("utf-8") if environment == "development" else _PAGE
    return page.replace("{{environment}}", environment)


@router.get("/console", response_class=HTMLResponse)
@router.get("/console/", response_class=HTMLResponse)
async def console_page(request: Request) -> Response:
    """The console's one HTML page; everything else is static files and the REST API."""
    environment = request.app.state.runtime.settings.app_env
    headers = SECURITY_HEADERS | {"Cache-Control": "no-store"}
    return HTMLResponse(_page(environment), headers=headers)


@router.get("/console/assets/{name:path}")
async def console_asset(name: str, request: Request) -> Response:
    """A static file of the console (scripts, styles, icons, the vendored libraries)."""
    asset = ASSETS.get(name)
    if asset is None:
        raise NotFound("No such file.", code="not_found")
    if not request.app.state.runtime.settings.is_production:
        asset = _read(STATIC / name)
    headers = SECURITY_HEADERS | {"ETag": asset.etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)

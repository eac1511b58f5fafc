"""Files (Bilag): upload to the archive, list, download.

Uploads are multipart with one file part of any name (Dinero's docs say `image`, clients send
`file` or an unnamed part). Above 6 MB Dinero answers 413 (its spec says 400; configurable).
This operation's declared 400 body is a JSON string, so its 400s are strings.

The list's date filters are described the wrong way round in Dinero's document
("uploadedAfter: limits the search to the given before date"); the sandbox reads them the
sensible way unless `uploaded_filters="as_documented"`. A deleted draft leaves its file in the
archive, linked to nothing (Unused).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from dinero_sandbox.auth import OrgCtx
from dinero_sandbox.errors import LIMIT_EXCEEDED, DineroError, not_found, validation_error
from dinero_sandbox.listing import MAX_PAGE_SIZE
from dinero_sandbox.state import OrgBooks, StoredFile
from dinero_sandbox.wire import DineroJSONResponse, iso_datetime

router = APIRouter()

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "webp": "image/webp",
}
EXTENSION_OF = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/heic": "heic",
    "image/webp": "webp",
}


def _bad_request(message: str) -> DineroJSONResponse:
    return DineroJSONResponse(message, status_code=400)


def _too_large(status: int, limit: int) -> DineroJSONResponse:
    message = f"The file is too large; the maximum size is {limit // (1024 * 1024)} MB"
    if status == 400:
        return _bad_request(message)
    return DineroJSONResponse(
        DineroError(status, LIMIT_EXCEEDED, message).body(), status_code=status
    )


@router.post("/v1/{organizationId}/files")
async def upload(request: Request, ctx: OrgCtx) -> DineroJSONResponse:
    """Upload file (image or PDF) to the file archive."""
    config = ctx.sandbox.config
    limit = config.max_file_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        return _too_large(config.oversize_file_status, limit)
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        return _bad_request("The request must be multipart/form-data with one file")
    try:
        form = await request.form(max_files=10, max_fields=50, max_part_size=limit + 1)
    except (MultiPartException, HTTPException) as exc:
        detail = exc.message if isinstance(exc, MultiPartException) else str(exc.detail)
        return _bad_request(f"The multipart body could not be read: {detail}")
    upload_file = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
    if upload_file is None:
        return _bad_request("No file was found in the request")
    content = await upload_file.read()
    await form.close()
    if len(content) > limit:
        return _too_large(config.oversize_file_status, limit)
    if not content:
        return _bad_request("The file is empty")
    filename = upload_file.filename or "file"
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not extension:
        extension = EXTENSION_OF.get((upload_file.content_type or "").split(";")[0], "")
    if extension not in CONTENT_TYPES:
        return _bad_request(f"Files of type '{extension or 'unknown'}' are not accepted")
    w = ctx.writer()
    stored = StoredFile(
        guid=w.ids.file_guid(),
        name=filename,
        extension=extension,
        content=content,
        content_type=CONTENT_TYPES[extension],
        uploaded_at=w.now,
        uploaded_by=w.username,
    )
    ctx.books.files[stored.guid] = stored
    return DineroJSONResponse({"FileGuid": stored.guid})


def links(books: OrgBooks, file_guid: str) -> list[dict[str, Any]]:
    """The vouchers and ledger items a file is attached to (FileLinkReadModel)."""
    result: list[tuple[datetime, dict[str, Any]]] = []
    for voucher in books.purchase_vouchers.values():
        if voucher.file_guid == file_guid and voucher.deleted_at is None:
            result.append(
                (voucher.created_at, _link(voucher.internal_id, voucher.guid, voucher.created_at))
            )
    for manual in books.manual_vouchers.values():
        if manual.file_guid == file_guid and manual.deleted_at is None:
            result.append(
                (manual.created_at, _link(manual.internal_id, manual.guid, manual.created_at))
            )
    for note in books.purchase_credit_notes.values():
        if note.file_guid == file_guid:
            result.append((note.created_at, _link(note.internal_id, note.guid, note.created_at)))
    for item in books.ledger_items.values():
        if item.file_guid == file_guid and item.deleted_at is None:
            number = item.booked_voucher_number or 0
            result.append((item.created_at, _link(number, item.id, item.created_at)))
    result.sort(key=lambda pair: pair[0])
    return [link for _, link in result]


def _link(voucher_id: int, guid: str, at: datetime) -> dict[str, Any]:
    return {"VoucherId": voucher_id, "VoucherGuid": guid, "LinkedAt": iso_datetime(at)}


def _slash_date(raw: str | None, field: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return datetime.strptime(raw.strip(), "%Y/%m/%d").date()  # noqa: DTZ007 - a date only
    except ValueError as exc:
        raise validation_error({field: f"'{raw}' is not a date in the format yyyy/MM/dd"}) from exc


@router.get("/v1/{organizationId}/files")
async def list_files(
    ctx: OrgCtx,
    extensions: Annotated[list[str] | None, Query()] = None,
    uploaded_before: Annotated[str | None, Query(alias="uploadedBefore")] = None,
    uploaded_after: Annotated[str | None, Query(alias="uploadedAfter")] = None,
    file_status: Annotated[str, Query(alias="fileStatus")] = "All",
    page: Annotated[int, Query()] = 0,
    page_size: Annotated[int, Query(alias="pageSize")] = 1000,
) -> DineroJSONResponse:
    """List files in the archive with the vouchers they are linked to."""
    if file_status not in ("All", "Used", "Unused"):
        raise validation_error({"fileStatus": "fileStatus must be All, Used or Unused"})
    if page < 0 or page_size < 1:
        raise validation_error({"pageSize": "page must be >= 0 and pageSize >= 1"})
    wanted = {
        part.strip().lower().lstrip(".")
        for value in extensions or []
        for part in value.split(",")
        if part.strip()
    }
    before = _slash_date(uploaded_before, "uploadedBefore")
    after = _slash_date(uploaded_after, "uploadedAfter")
    if ctx.sandbox.config.uploaded_filters == "as_documented":
        # "uploadedAfter: limits the search to the given before date", and the reverse.
        before, after = after, before
    rows = []
    for stored in sorted(ctx.books.files.values(), key=lambda f: (f.uploaded_at, f.guid)):
        linked = links(ctx.books, stored.guid)
        day = stored.uploaded_at.date()
        if wanted and stored.extension not in wanted:
            continue
        if before is not None and day > before:
            continue
        if after is not None and day < after:
            continue
        if file_status == "Used" and not linked:
            continue
        if file_status == "Unused" and linked:
            continue
        rows.append(
            {
                "FileGuid": stored.guid,
                "Name": stored.name,
                "Extension": stored.extension,
                "Size": stored.size,
                "UploadedAt": iso_datetime(stored.uploaded_at),
                "Note": stored.note,
                "NumberOfPages": 1,
                "Linked": linked,
                "UploadedBy": stored.uploaded_by,
            }
        )
    size = min(page_size, MAX_PAGE_SIZE)
    return DineroJSONResponse(rows[page * size : (page + 1) * size])


@router.get("/v1/{organizationId}/files/{fileGuid}")
async def download(file_guid: Annotated[str, Path(alias="fileGuid")], ctx: OrgCtx) -> Response:
    """Download a file."""
    stored = ctx.books.files.get(file_guid)
    if stored is None:
        raise not_found("File")
    return Response(
        content=stored.content,
        media_type=stored.content_type,
        headers={"Content-Disposition": f'attachment; filename="{stored.name}"'},
    )

"""Files from the dashboard's forms, copied to scratch with the server's size cap.

A folder chosen in the browser (``<input webkitdirectory>``) arrives as many files, each named
by its path inside the chosen folder; they are packed into a zip so the service checks them
exactly like an uploaded archive (no ``..``, no absolute path, size and count limits).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from fastapi import Request
from starlette.datastructures import UploadFile

from modelops.domain.errors import InvalidInput, PayloadTooLarge

CHUNK = 1024 * 1024


def check_declared_size(request: Request, max_bytes: int) -> None:
    """Refuse before reading when the browser announces a body over the cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"upload is larger than the limit of {max_bytes} bytes")


async def save_upload(upload: UploadFile, *, scratch: Path, max_bytes: int) -> Path:
    """The uploaded file's bytes in a scratch file (the caller deletes it)."""
    fd, name = tempfile.mkstemp(prefix="web-upload-", dir=scratch)
    size = 0
    try:
        with os.fdopen(fd, "wb") as sink:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"upload is larger than the limit of {max_bytes} bytes")
                sink.write(chunk)
        if size == 0:
            raise InvalidInput(f"the file {upload.filename or ''!r} is empty")
        return Path(name)
    except BaseException:
        os.unlink(name)
        raise


def _relative_names(uploads: list[UploadFile]) -> list[str]:
    """Paths inside the chosen folder: the browser prefixes each with the folder's own name,
    which is dropped so the dataset's root is the folder's content."""
    names = [(u.filename or "").replace("\\", "/") for u in uploads]
    if any(not n for n in names):
        raise InvalidInput("every uploaded file needs a name")
    parts = [PurePosixPath(n).parts for n in names]
    first = parts[0][0] if parts[0] else ""
    if all(len(p) > 1 and p[0] == first for p in parts):
        return ["/".join(p[1:]) for p in parts]
    return names


async def zip_folder_upload(uploads: list[UploadFile], *, scratch: Path, max_bytes: int) -> Path:
    """A zip (in scratch) of the files of a folder upload, keyed by their relative paths."""
    fd, name = tempfile.mkstemp(prefix="web-folder-", suffix=".zip", dir=scratch)
    os.close(fd)
    total = 0
    try:
        with zipfile.ZipFile(name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for upload, relative in zip(uploads, _relative_names(uploads), strict=True):
                # Stored as given: the service's extraction refuses '..' and absolute paths.
                with archive.open(relative, "w", force_zip64=True) as sink:
                    while chunk := await upload.read(CHUNK):
                        total += len(chunk)
                        if total > max_bytes:
                            raise PayloadTooLarge(
                                f"upload is larger than the limit of {max_bytes} bytes"
                            )
                        sink.write(chunk)
        return Path(name)
    except BaseException:
        os.unlink(name)
        raise

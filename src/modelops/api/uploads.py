"""Request bodies streamed to a scratch file, with a size cap, so memory stays flat."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Request

from modelops.domain.errors import InvalidInput, PayloadTooLarge
from modelops.settings import Settings


async def spool_body(request: Request, *, scratch: Path, max_bytes: int) -> Path:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"upload is larger than the limit of {max_bytes} bytes")
    fd, name = tempfile.mkstemp(prefix="upload-", dir=scratch)
    size = 0
    try:
        with os.fdopen(fd, "wb") as sink:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"upload is larger than the limit of {max_bytes} bytes")
                sink.write(chunk)
        if size == 0:
            raise InvalidInput("the request body is empty: send the archive as the body")
        return Path(name)
    except BaseException:
        os.unlink(name)
        raise


@asynccontextmanager
async def spooled_body(request: Request, settings: Settings) -> AsyncIterator[Path]:
    """The request body as a scratch file under the upload limit, removed when the block ends."""
    path = await spool_body(request, scratch=settings.scratch_dir, max_bytes=settings.max_upload_bytes)
    try:
        yield path
    finally:
        os.unlink(path)

"""Blobs on any fsspec filesystem (s3://bucket/prefix, memory://, …), behind the same port.

Object stores make a single PUT atomic, so the temp-then-move dance of the local store is
replaced by an upload to a temp key and a move; readers only ever look at final keys.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from modelops.adapters.artifacts.hashing import check_sha, copy_hashing, iter_file
from modelops.domain.errors import NotFound
from modelops.ports import BlobRef


class FsspecArtifactStore:
    def __init__(self, url: str, **storage_options: Any) -> None:
        self.fs, self.base = fsspec.core.url_to_fs(url, **storage_options)
        self.base = self.base.rstrip("/")

    def _key(self, sha256: str) -> str:
        check_sha(sha256)
        return f"{self.base}/blobs/{sha256[:2]}/{sha256}"

    def put_stream(self, chunks: Iterable[bytes]) -> BlobRef:
        # Hash first into a local spool so the final key is known before anything is visible.
        # The spool is removed on every path, a source that fails half-way included.
        fd, spool = tempfile.mkstemp(prefix="modelops-blob-")
        try:
            with os.fdopen(fd, "wb") as sink:
                sha256, size = copy_hashing(chunks, sink)
            key = self._key(sha256)
            if not self.fs.exists(key):
                temp_key = f"{self.base}/tmp/{uuid.uuid4().hex}"
                try:
                    self.fs.put_file(spool, temp_key)
                    self.fs.mv(temp_key, key)
                finally:
                    if self.fs.exists(temp_key):
                        self.fs.rm(temp_key)
            return BlobRef(sha256=sha256, size=size)
        finally:
            os.unlink(spool)

    def put_file(self, path: Path) -> BlobRef:
        return self.put_stream(iter_file(path))

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._key(sha256)))

    def open(self, sha256: str) -> BinaryIO:
        key = self._key(sha256)
        if not self.fs.exists(key):
            raise NotFound(f"blob {sha256} not found")
        handle: BinaryIO = self.fs.open(key, "rb", block_size=1024 * 1024)
        return handle

    def fetch_to(self, sha256: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f".{destination.name}.part")
        with self.open(sha256) as source, open(tmp, "wb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
        os.replace(tmp, destination)

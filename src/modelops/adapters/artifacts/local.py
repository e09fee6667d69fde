"""Blobs on local disk under ``<root>/blobs/ab/abcdef…``, written to a temp file then renamed."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from modelops.adapters.artifacts.hashing import check_sha, copy_hashing, iter_file
from modelops.domain.errors import NotFound
from modelops.ports import BlobRef


class LocalArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        check_sha(sha256)
        return self.blobs / sha256[:2] / sha256

    def put_stream(self, chunks: Iterable[bytes]) -> BlobRef:
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as sink:
                sha256, size = copy_hashing(chunks, sink)
                sink.flush()
                os.fsync(sink.fileno())
            final = self.path_of(sha256)
            if final.exists():
                os.unlink(tmp_name)  # identical content is stored once
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp_name, 0o444)
                os.replace(tmp_name, final)
            return BlobRef(sha256=sha256, size=size)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_file(self, path: Path) -> BlobRef:
        return self.put_stream(iter_file(path))

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self.path_of(sha256), "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {sha256} not found") from exc

    def fetch_to(self, sha256: str, destination: Path) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f".{destination.name}.part")
        with self.open(sha256) as source, open(tmp, "wb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
        os.replace(tmp, destination)

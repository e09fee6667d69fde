"""Streaming helpers shared by the artifact stores."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from modelops.domain.errors import InvalidInput

CHUNK = 1024 * 1024
_SHA = re.compile(r"^[0-9a-f]{64}$")


def check_sha(sha256: str) -> str:
    if not _SHA.match(sha256):
        raise InvalidInput(f"invalid content hash {sha256!r}")
    return sha256


def iter_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from iter_stream(handle)


def iter_stream(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def copy_hashing(chunks: Iterable[bytes], sink: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        sink.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in iter_file(path):
        digest.update(chunk)
    return digest.hexdigest()

"""What the foundation endpoints return, as TypedDicts: exactly the server's JSON, typed.

Timestamps stay ISO 8601 strings, as sent; nothing here converts or validates, so a record
can be printed as JSON again unchanged.
"""

from __future__ import annotations

from typing import Any, TypedDict


class WhoAmI(TypedDict):
    name: str
    role: str


class Token(TypedDict):
    id: int
    name: str
    role: str
    created_at: str
    created_by: str
    revoked_at: str | None


class NewToken(Token):
    secret: str  # shown once: the server keeps only its hash


class Project(TypedDict):
    id: int
    name: str
    description: str
    created_at: str
    created_by: str


class Dataset(TypedDict):
    id: int
    name: str
    description: str
    latest_version: int
    created_at: str
    created_by: str


class ManifestEntry(TypedDict):
    path: str
    size: int
    sha256: str


class DatasetVersion(TypedDict):
    id: int
    version: int
    file_count: int
    total_size: int
    content_hash: str
    note: str
    created_at: str
    created_by: str


class DatasetVersionDetail(DatasetVersion):
    files: list[ManifestEntry]


class ChangedFile(TypedDict):
    path: str
    old_size: int
    new_size: int
    old_sha256: str
    new_sha256: str


class DatasetDiff(TypedDict):
    old: int
    new: int
    added: list[ManifestEntry]
    removed: list[ManifestEntry]
    changed: list[ChangedFile]
    unchanged: int


class Package(TypedDict):
    id: int
    name: str
    description: str
    latest_major: int
    created_at: str
    created_by: str


class ModelVersion(TypedDict):
    id: int
    version: str
    major: int
    minor: int
    status: str
    zip_sha256: str
    zip_size: int
    code_root: str
    can_train: bool
    can_serve: bool
    requirements_sha256: str | None
    lineage: dict[str, Any]
    metrics: dict[str, Any]
    created_at: str
    created_by: str

"""Request and response bodies: XCreate / XRead / XList(data, count)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class ListOf(BaseModel, Generic[T]):
    data: list[T]
    count: int


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ProjectCreate(BaseModel):
    name: str = Field(description="1-64 letters, digits, '.', '_' or '-'")
    description: str = ""


class ProjectRead(_Read):
    id: int
    name: str
    description: str
    created_at: datetime
    created_by: str


class TokenCreate(BaseModel):
    name: str
    role: str = Field(description="viewer, member, approver or admin")


class TokenRead(_Read):
    id: int
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    secret: str = Field(description="shown once; store it now")


class WhoAmI(BaseModel):
    name: str
    role: str


class DatasetCreate(BaseModel):
    name: str
    description: str = ""


class DatasetRead(_Read):
    id: int
    name: str
    description: str
    latest_version: int
    created_at: datetime
    created_by: str


class ManifestEntryRead(_Read):
    path: str
    size: int
    sha256: str


class DatasetVersionRead(_Read):
    id: int
    version: int
    file_count: int
    total_size: int
    content_hash: str
    note: str
    created_at: datetime
    created_by: str


class DatasetVersionDetail(DatasetVersionRead):
    files: list[ManifestEntryRead]


class ChangedEntry(BaseModel):
    path: str
    old_size: int
    new_size: int
    old_sha256: str
    new_sha256: str


class DatasetDiffRead(BaseModel):
    old: int
    new: int
    added: list[ManifestEntryRead]
    removed: list[ManifestEntryRead]
    changed: list[ChangedEntry]
    unchanged: int


class PackageRead(_Read):
    id: int
    name: str
    description: str
    latest_major: int
    created_at: datetime
    created_by: str


class ModelVersionRead(_Read):
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
    created_at: datetime
    created_by: str

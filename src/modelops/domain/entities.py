"""Entities as plain dataclasses; adapters convert their rows to these at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelops.domain.roles import Role


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    description: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name is the actor recorded on everything they do."""

    token_id: int
    name: str
    role: Role


@dataclass(frozen=True)
class Dataset:
    id: int
    project_id: int
    name: str
    description: str
    created_at: datetime
    created_by: str
    latest_version: int = 0


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # POSIX, relative to the version's root
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    dataset_id: int
    version: int
    file_count: int
    total_size: int
    content_hash: str  # sha256 over the sorted manifest: equal content, equal hash
    created_at: datetime
    created_by: str
    note: str = ""
    files: list[ManifestEntry] = field(default_factory=list)


@dataclass(frozen=True)
class ModelPackage:
    id: int
    project_id: int
    name: str
    description: str
    created_at: datetime
    created_by: str
    latest_major: int = 0


@dataclass(frozen=True)
class ModelVersion:
    id: int
    package_id: int
    major: int
    minor: int
    status: str
    zip_sha256: str
    zip_size: int
    code_root: str  # folder inside the zip holding train.py/main.py ("" when at the top)
    can_train: bool
    can_serve: bool
    requirements_sha256: str | None
    created_at: datetime
    created_by: str
    lineage: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

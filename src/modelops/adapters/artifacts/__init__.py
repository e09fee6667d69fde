"""Content-addressed artifact stores behind the ArtifactStore port."""

from __future__ import annotations

from modelops.adapters.artifacts.fsspec_store import FsspecArtifactStore
from modelops.adapters.artifacts.local import LocalArtifactStore

__all__ = ["LocalArtifactStore", "FsspecArtifactStore", "build_artifact_store"]


def build_artifact_store(url: str) -> LocalArtifactStore | FsspecArtifactStore:
    """A plain path or file:// URL gives the local store; any other fsspec URL (s3://…) the other."""
    if "://" not in url:
        return LocalArtifactStore(url)
    if url.startswith("file://"):
        return LocalArtifactStore(url.removeprefix("file://"))
    return FsspecArtifactStore(url)

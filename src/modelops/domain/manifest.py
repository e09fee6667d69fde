"""Dataset manifests: a canonical hash of their content and the difference between two."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from modelops.domain.entities import ManifestEntry
from modelops.domain.errors import InvalidInput


def manifest_hash(entries: Iterable[ManifestEntry]) -> str:
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.path):
        digest.update(f"{entry.path}\0{entry.size}\0{entry.sha256}\n".encode())
    return digest.hexdigest()


def normalise_folder(folder: str | None) -> str:
    """A sub-folder selector as a clean relative POSIX prefix ('' for the whole version)."""
    if not folder:
        return ""
    parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidInput(f"invalid folder {folder!r}: '..' is not allowed")
    return "/".join(parts)


def select_folder(entries: Iterable[ManifestEntry], folder: str) -> list[ManifestEntry]:
    prefix = normalise_folder(folder)
    if not prefix:
        return list(entries)
    chosen = [e for e in entries if e.path.startswith(prefix + "/")]
    if not chosen:
        raise InvalidInput(f"folder {prefix!r} does not exist in this version")
    return chosen


@dataclass(frozen=True)
class ManifestDiff:
    added: list[ManifestEntry] = field(default_factory=list)
    removed: list[ManifestEntry] = field(default_factory=list)
    changed: list[tuple[ManifestEntry, ManifestEntry]] = field(default_factory=list)
    unchanged: int = 0


def diff_manifests(old: Iterable[ManifestEntry], new: Iterable[ManifestEntry]) -> ManifestDiff:
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    added = [after[p] for p in sorted(after.keys() - before.keys())]
    removed = [before[p] for p in sorted(before.keys() - after.keys())]
    changed = []
    unchanged = 0
    for path in sorted(before.keys() & after.keys()):
        if before[path].sha256 != after[path].sha256:
            changed.append((before[path], after[path]))
        else:
            unchanged += 1
    return ManifestDiff(added=added, removed=removed, changed=changed, unchanged=unchanged)

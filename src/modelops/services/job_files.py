"""File chores shared by the job kinds' server-side halves: copying stored blobs into a job's
folder, building the runtime command, and reading the JSON a job's process leaves behind (as
untrusted input). Nothing here opens a model or runs user code."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelops.archives import ArchiveLimits, extract_archive
from modelops.domain.entities import ManifestEntry
from modelops.domain.errors import InvalidInput
from modelops.ports import ArtifactStore

PYTHON = "{python}"
# -I: the job's folder (the user's files) never shadows a module; -u: logs arrive live.
RUNTIME = [PYTHON, "-I", "-u", "-m"]


def fetch_entries(artifacts: ArtifactStore, entries: Iterable[ManifestEntry], destination: Path) -> None:
    """Write manifest entries as plain files under ``destination``, at their relative paths."""
    for entry in entries:
        artifacts.fetch_to(entry.sha256, destination.joinpath(*entry.path.split("/")))


def unpack_blob(artifacts: ArtifactStore, sha256: str, destination: Path, limits: ArchiveLimits) -> None:
    """Extract a stored zip (a model or package) into ``destination``, safely."""
    archive = destination.parent / f".{destination.name}.zip"
    try:
        artifacts.fetch_to(sha256, archive)
        extract_archive(archive, destination, limits)
    finally:
        archive.unlink(missing_ok=True)


def runtime_argv(module: str, **options: Path | str | int) -> list[str]:
    """``{python} -I -u -m modelops.runtime.<module> --option value …``."""
    argv = [*RUNTIME, f"modelops.runtime.{module}"]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def read_job_json(path: Path, *, limit: int, what: str) -> Any:
    """The JSON a job's process wrote, size-capped and strict (no NaN/Infinity)."""
    if not path.is_file():
        raise InvalidInput(f"the job's process ended without writing its {what}")
    if path.stat().st_size > limit:
        raise InvalidInput(f"the job's {what} is larger than {limit} bytes")

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the job's {what} is not valid JSON: {exc}") from exc

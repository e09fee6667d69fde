"""The ``script`` job kind: run a command of an ML package version, in its environment.

Parameters: ``{"package": name, "version": "1.0", "command": ["python", "job.py", ...]}``.
The server unpacks the version's zip into the job's working folder (the package's code root
becomes the folder itself) and the command runs there; a leading ``python`` means the
interpreter of the package's environment (built from its requirements.txt, if it has one).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modelops.archives import ArchiveLimits, extract_archive
from modelops.domain.errors import InvalidInput
from modelops.domain.jobs import Job, JobKind
from modelops.domain.versions import parse_version
from modelops.ports import ArtifactStore, UnitOfWorkFactory
from modelops.services.job_files import PYTHON
from modelops.services.job_kinds import CheckedParameters, PreparedJob

_PARAMETERS = {"package", "version", "command"}


class ScriptKind:
    kind = JobKind.SCRIPT

    def __init__(
        self, *, uow: UnitOfWorkFactory, artifacts: ArtifactStore, limits: ArchiveLimits,
        cache_dir: Path | None = None,
    ) -> None:
        self.uow = uow
        self.artifacts = artifacts
        self.limits = limits
        self.cache_dir = cache_dir
        # A version's zip and code root never change: remember them, saving a transaction
        # on every job's start.
        self._sources: dict[int, tuple[str, str]] = {}
        # Versions are never deleted, and a project holding one cannot be: a version found
        # once stays found. Submitting is hot, so remember which id a name means.
        self._versions: dict[tuple[int, str, int, int], int] = {}

    def validate(self, *, project_id: int, parameters: dict[str, Any]) -> CheckedParameters:
        unknown = sorted(set(parameters) - _PARAMETERS)
        if unknown:
            raise InvalidInput(f"unknown parameter(s) for a script job: {', '.join(unknown)}")
        package, version, command = (parameters.get(k) for k in ("package", "version", "command"))
        if not isinstance(package, str) or not package:
            raise InvalidInput("a script job needs 'package': the ML package's name")
        if not isinstance(version, str) or not version:
            raise InvalidInput("a script job needs 'version', e.g. \"1.0\"")
        if (
            not isinstance(command, list) or not command
            or not all(isinstance(arg, str) for arg in command) or not command[0]
        ):
            raise InvalidInput(
                "a script job needs 'command': a non-empty list of strings, e.g. [\"python\", \"job.py\"]"
            )
        major, minor = parse_version(version)
        key = (project_id, package, major, minor)
        target_id = self._versions.get(key)
        if target_id is None:
            with self.uow() as uow:
                found = uow.packages.get(project_id, package)
                target_id = uow.packages.get_version(found.id, major, minor).id
            self._versions[key] = target_id
        return CheckedParameters(
            parameters={"package": package, "version": f"{major}.{minor}", "command": command},
            target_type="model_version", target_id=target_id,
        )

    def prepare(self, job: Job, workdir: Path) -> PreparedJob:
        if job.target_id is None:
            raise InvalidInput("the job names no model version")
        source = self._sources.get(job.target_id)
        if source is None:
            with self.uow() as uow:
                model_version = uow.packages.get_version_by_id(job.target_id)
            source = self._sources[job.target_id] = (model_version.zip_sha256, model_version.code_root)
        materialise_package(
            artifacts=self.artifacts, zip_sha256=source[0], code_root=source[1], workdir=workdir,
            limits=self.limits, cache_dir=self.cache_dir,
        )
        argv = list(job.parameters["command"])
        if argv[0] in ("python", "python3"):
            argv[0] = PYTHON
        requirements = workdir / "requirements.txt"
        return PreparedJob(argv=argv, requirements=requirements if requirements.is_file() else None)

    def finish(self, job: Job, workdir: Path) -> dict[str, Any]:
        return {}


def materialise_package(
    *, artifacts: ArtifactStore, zip_sha256: str, code_root: str, workdir: Path,
    limits: ArchiveLimits, cache_dir: Path | None = None,
) -> None:
    """Put a package version's files in ``workdir``, its code root being ``workdir`` itself.

    With ``cache_dir``, each zip is unpacked once (content-addressed, renamed into place when
    complete) and copied from there: a job then never pays for fetching and unpacking again,
    and never shares a file with the cache or another job."""
    if cache_dir is None:
        tree = _unpack(artifacts, zip_sha256, workdir, limits)
        try:
            _move_children(tree.joinpath(*code_root.split("/")) if code_root else tree, workdir)
        finally:
            shutil.rmtree(tree.parent, ignore_errors=True)
        return
    cached = cache_dir / zip_sha256
    if not cached.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tree = _unpack(artifacts, zip_sha256, cache_dir, limits)
        try:
            os.rename(tree, cached)
        except OSError:
            pass  # another job unpacked the same zip first: the same content
        finally:
            shutil.rmtree(tree.parent, ignore_errors=True)
    root = cached.joinpath(*code_root.split("/")) if code_root else cached
    shutil.copytree(root, workdir, symlinks=True, dirs_exist_ok=True)


def _unpack(artifacts: ArtifactStore, zip_sha256: str, parent: Path, limits: ArchiveLimits) -> Path:
    """Fetch and extract a zip into a fresh hidden folder under ``parent``; returns the tree."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=parent))
    try:
        archive = staging / "package.zip"
        artifacts.fetch_to(zip_sha256, archive)
        tree = staging / "tree"
        extract_archive(archive, tree, limits)
        archive.unlink()
        return tree
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _move_children(source: Path, target: Path) -> None:
    for entry in source.iterdir():
        os.replace(entry, target / entry.name)

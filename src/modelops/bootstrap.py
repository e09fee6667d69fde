"""The composition root: builds every store, service and executor from settings, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine

from modelops.adapters.artifacts import build_artifact_store
from modelops.adapters.sql.engine import build_engine, migrate
from modelops.adapters.sql.uow import SqlUnitOfWorkFactory
from modelops.archives import ArchiveLimits
from modelops.ports import ArtifactStore
from modelops.services.auth import AuthService
from modelops.services.datasets import DatasetService
from modelops.services.packages import PackageService
from modelops.services.projects import ProjectService
from modelops.settings import Settings


class Background(Protocol):
    """A long-running part of the server (job engine, scheduler) started with it."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Container:
    settings: Settings
    engine: Engine
    uow: SqlUnitOfWorkFactory
    artifacts: ArtifactStore
    auth: AuthService
    projects: ProjectService
    datasets: DatasetService
    packages: PackageService
    background: list[Background] = field(default_factory=list)

    def start_background(self) -> None:
        for part in self.background:
            part.start()

    def stop_background(self) -> None:
        for part in reversed(self.background):
            part.stop()

    def close(self) -> None:
        self.stop_background()
        self.engine.dispose()


def build_container(settings: Settings, *, run_migrations: bool = True) -> Container:
    home = settings.resolved_home
    home.mkdir(parents=True, exist_ok=True)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    scratch = settings.work_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    engine = build_engine(settings.resolved_database_url)
    if run_migrations:
        migrate(engine)
    uow = SqlUnitOfWorkFactory(engine)
    artifacts = build_artifact_store(settings.resolved_artifacts_url)
    limits = ArchiveLimits(
        max_total_bytes=settings.archive_max_total_bytes,
        max_entries=settings.archive_max_entries,
        max_ratio=settings.archive_max_ratio,
    )
    return Container(
        settings=settings,
        engine=engine,
        uow=uow,
        artifacts=artifacts,
        auth=AuthService(uow=uow),
        projects=ProjectService(uow=uow),
        datasets=DatasetService(uow=uow, artifacts=artifacts, scratch=scratch, limits=limits),
        packages=PackageService(uow=uow, artifacts=artifacts, scratch=scratch, limits=limits),
    )

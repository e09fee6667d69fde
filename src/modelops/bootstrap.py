"""The composition root: builds every store, service and executor from settings, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine

from modelops.adapters.artifacts import build_artifact_store
from modelops.adapters.executors import build_executor
from modelops.adapters.executors.processes import engine_process_alive, this_process_started
from modelops.adapters.sql.engine import build_engine, migrate
from modelops.adapters.sql.uow import SqlUnitOfWorkFactory
from modelops.archives import ArchiveLimits
from modelops.domain.jobs import JobKind
from modelops.domain.pipelines import PIPELINE_JOB_KINDS
from modelops.ports import ArtifactStore, Executor
from modelops.services.auth import AuthService
from modelops.services.byom import ImportService
from modelops.services.byom_kinds import ImportKind, StatisticsKind
from modelops.services.datasets import DatasetService
from modelops.services.engine import JobEngine
from modelops.services.evaluation import EvaluationService
from modelops.services.evaluation_kind import EvaluationKind
from modelops.services.job_kinds import JobKindRegistry
from modelops.services.jobs import JobService
from modelops.services.lifecycle_setup import LifecycleServices, build_lifecycle
from modelops.services.packages import PackageService
from modelops.services.pipeline_jobs import PipelineJobHandler
from modelops.services.pipeline_scheduler import PipelineScheduler
from modelops.services.pipelines import PipelineService
from modelops.services.projects import ProjectService
from modelops.services.script_kind import ScriptKind
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
    executor: Executor
    job_kinds: JobKindRegistry  # register a kind's handler here; the engine runs every kind
    jobs: JobService
    job_engine: JobEngine
    pipelines: PipelineService
    byom: ImportService
    evaluation: EvaluationService  # evaluate any version on labelled data; its report
    lifecycle: LifecycleServices  # approve/reject, deployments, batch runs, audit trail
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
    scratch = settings.scratch_dir
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
    job_kinds = JobKindRegistry()
    job_kinds.register(
        ScriptKind(uow=uow, artifacts=artifacts, limits=limits, cache_dir=settings.work_dir / "packages")
    )
    executor = build_executor(settings)
    job_engine = JobEngine(
        uow=uow, executor=executor, registry=job_kinds, jobs_dir=settings.work_dir / "jobs",
        max_concurrent=settings.max_concurrent_jobs, interval=settings.scheduler_interval,
        name=settings.resolved_engine_name, heartbeat=settings.engine_heartbeat,
        lost_after=settings.engine_lost_after, holds_name=engine_process_alive,
        process_started=this_process_started(),
    )
    datasets = DatasetService(uow=uow, artifacts=artifacts, scratch=scratch, limits=limits)
    pipelines = PipelineService(
        uow=uow, artifacts=artifacts, wake=job_engine.wake,
        default_timeout=settings.default_job_timeout,
    )
    for kind in sorted(PIPELINE_JOB_KINDS):
        job_kinds.register(PipelineJobHandler(
            kind=kind, uow=uow, artifacts=artifacts, limits=limits, materialise=datasets.materialise,
        ))
    # One EVALUATION kind: evaluation pipeline runs go on to their handler, the others are
    # evaluations of any version on labelled data.
    job_kinds.register(EvaluationKind(uow=uow, artifacts=artifacts, limits=limits,
                                      pipeline_runs=job_kinds.get(JobKind.EVALUATION)))
    statistics_kind = StatisticsKind(uow=uow, artifacts=artifacts, limits=limits)
    job_kinds.register(statistics_kind)
    job_kinds.register(ImportKind(
        uow=uow, artifacts=artifacts, limits=limits, statistics=statistics_kind, wake=job_engine.wake,
    ))
    jobs = JobService(
        uow=uow, registry=job_kinds, engine=job_engine, default_timeout=settings.default_job_timeout,
    )
    lifecycle = build_lifecycle(uow=uow, artifacts=artifacts, limits=limits, registry=job_kinds, wake=job_engine.wake, default_timeout=settings.default_job_timeout)
    return Container(
        settings=settings,
        engine=engine,
        uow=uow,
        artifacts=artifacts,
        auth=AuthService(uow=uow),
        projects=ProjectService(uow=uow),
        datasets=datasets,
        packages=PackageService(uow=uow, artifacts=artifacts, scratch=scratch, limits=limits),
        executor=executor,
        job_kinds=job_kinds,
        jobs=jobs,
        job_engine=job_engine,
        pipelines=pipelines,
        byom=ImportService(uow=uow, artifacts=artifacts, jobs=jobs, scratch=scratch, limits=limits),
        evaluation=EvaluationService(uow=uow, artifacts=artifacts, jobs=jobs),
        lifecycle=lifecycle,
        background=_background(settings, job_engine, PipelineScheduler(uow=uow, pipelines=pipelines),
                               lifecycle.scheduler),
    )


def _background(settings: Settings, job_engine: JobEngine, *schedulers: Background) -> list[Background]:
    """What this process runs besides the API: by default everything (several processes can
    share one database: claims, adoptions and firings are compare-and-set)."""
    parts: list[Background] = [job_engine] if settings.run_jobs else []
    return parts + (list(schedulers) if settings.run_scheduler else [])

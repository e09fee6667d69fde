"""Executors run job processes; the engine talks to them only through the Executor port."""

from __future__ import annotations

from modelops.adapters.executors.local import LocalExecutor
from modelops.domain.errors import InvalidInput
from modelops.ports import Executor
from modelops.settings import Settings


def build_executor(settings: Settings) -> Executor:
    if settings.executor == "local":
        return LocalExecutor(
            root=settings.work_dir / "executor", envs_root=settings.work_dir / "envs",
            standby=settings.job_standby,
        )
    if settings.executor == "ray":
        if not settings.ray_address:
            raise InvalidInput("the Ray executor needs MODELOPS_RAY_ADDRESS (e.g. http://127.0.0.1:8265)")
        # Imported here: the local default never loads the Ray client.
        from modelops.adapters.executors.ray import RayExecutor

        return RayExecutor(
            address=settings.ray_address, root=settings.work_dir / "executor",
            envs_root=settings.work_dir / "envs", workdir_mode=settings.ray_workdir_mode,
            job_cpus=settings.ray_job_cpus,
            python=settings.ray_python, request_timeout=settings.ray_request_timeout,
        )
    raise InvalidInput(f"unknown executor {settings.executor!r}: use 'local' or 'ray'")

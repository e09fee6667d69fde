"""Executors run job processes; the engine talks to them only through the Executor port."""

from __future__ import annotations

from modelops.adapters.executors.local import LocalExecutor
from modelops.domain.errors import InvalidInput
from modelops.ports import Executor
from modelops.settings import Settings


def build_executor(settings: Settings) -> Executor:
    if settings.executor == "local":
        return LocalExecutor(
            root=settings.work_dir / "executor", envs_root=settings.work_dir / "envs"
        )
    raise InvalidInput(f"unknown executor {settings.executor!r}: the only one available is 'local'")

"""Settings from the environment (MODELOPS_*), with the embedded defaults under MODELOPS_HOME."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELOPS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path("~/.modelops").expanduser())
    database_url: str | None = None  # default: SQLite file in home
    artifacts_url: str | None = None  # default: home/artifacts; or an fsspec URL (s3://…)
    host: str = "127.0.0.1"
    port: int = 8765
    executor: str = "local"  # or "ray": jobs run on the Ray cluster at ray_address
    ray_address: str | None = None  # the cluster's Jobs API (dashboard), e.g. http://127.0.0.1:8265
    ray_workdir_mode: str = "shared"  # "shared" (same path on every node) or "upload"
    ray_job_cpus: float | None = None  # CPUs a job reserves on Ray (spreads jobs over nodes)
    ray_python: str | None = None  # the interpreter on the Ray nodes (default: ours if shared)
    ray_request_timeout: float = 30.0  # seconds for any one call to Ray's Jobs API
    max_concurrent_jobs: int = Field(default_factory=lambda: os.cpu_count() or 2)
    default_job_timeout: float | None = None
    job_standby: bool = True  # local executor: keep a Python interpreter started ahead for the next job
    scheduler_interval: float = 0.2
    # Several servers may share one database: each job belongs to the engine that claimed it.
    # The name must be stable across restarts of the same server (default: host and home), so a
    # restarted server takes its own jobs back at once; another engine adopts the jobs of one
    # whose heartbeat is older than engine_lost_after.
    engine_name: str | None = None
    run_jobs: bool = True  # this process runs a job engine (false: an API-only server)
    run_scheduler: bool = True  # this process fires due schedules (false: leave it to others)
    engine_heartbeat: float = 5.0
    engine_lost_after: float = 60.0
    max_upload_bytes: int = 10 * 1024**3
    archive_max_total_bytes: int = 20 * 1024**3
    archive_max_entries: int = 100_000
    archive_max_ratio: float = 200.0

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'modelops.db'}"

    @property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str(self.resolved_home / "artifacts")

    @property
    def work_dir(self) -> Path:
        """Scratch space: job working folders, upload spools, package environments."""
        return self.resolved_home / "work"

    @property
    def scratch_dir(self) -> Path:
        """Upload spools and temporary extractions; emptied by whoever made each entry."""
        return self.work_dir / "scratch"

    @property
    def resolved_engine_name(self) -> str:
        if self.engine_name:
            return self.engine_name[:255]
        name = f"{socket.gethostname()}:{self.resolved_home}"
        if len(name) > 255:  # still stable and unique: a digest of the home's path
            digest = hashlib.sha256(str(self.resolved_home).encode()).hexdigest()[:16]
            name = f"{socket.gethostname()[:200]}:{digest}"
        return name

    @property
    def admin_token_file(self) -> Path:
        return self.resolved_home / "admin.token"

    @property
    def server_file(self) -> Path:
        """Where a running server writes its URL, so the CLI finds it."""
        return self.resolved_home / "server.json"

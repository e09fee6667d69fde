"""Unit of work: one session, one transaction, every store bound to it."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from modelops.adapters.sql.jobs import SqlJobStore
from modelops.adapters.sql.lifecycle import SqlAuditStore, SqlDeploymentStore
from modelops.adapters.sql.pipelines import SqlPipelineStore
from modelops.adapters.sql.statistics import SqlStatisticsStore
from modelops.adapters.sql.stores import (
    SqlDatasetStore,
    SqlPackageStore,
    SqlProjectStore,
    SqlTokenStore,
)


class SqlUnitOfWork:
    def __init__(
        self, session_factory: sessionmaker[Session], lock: threading.RLock | None = None
    ) -> None:
        self._session_factory = session_factory
        self._lock = lock

    def __enter__(self) -> SqlUnitOfWork:
        if self._lock is not None:
            self._lock.acquire()
        try:
            self.session = self._session_factory()
            self.session.begin()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self.projects = SqlProjectStore(self.session)
        self.tokens = SqlTokenStore(self.session)
        self.datasets = SqlDatasetStore(self.session)
        self.packages = SqlPackageStore(self.session)
        self.jobs = SqlJobStore(self.session)
        self.statistics = SqlStatisticsStore(self.session)
        self.pipelines = SqlPipelineStore(self.session)
        self.deployments, self.audit = SqlDeploymentStore(self.session), SqlAuditStore(self.session)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
            if self._lock is not None:
                self._lock.release()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
        # SQLite runs one transaction at a time anyway (BEGIN IMMEDIATE). Queueing this
        # process's transactions on a lock hands the database over the moment it is free,
        # where SQLite's busy handler would sleep in growing steps (up to 100 ms each) and
        # let one thread starve for most of a second under load.
        self._lock = threading.RLock() if engine.dialect.name == "sqlite" else None

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._lock)

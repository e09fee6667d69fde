"""Unit of work: one session, one transaction, every store bound to it."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from modelops.adapters.sql.jobs import SqlJobStore
from modelops.adapters.sql.stores import (
    SqlDatasetStore,
    SqlPackageStore,
    SqlProjectStore,
    SqlTokenStore,
)


class SqlUnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> SqlUnitOfWork:
        self.session = self._session_factory()
        self.session.begin()
        self.projects = SqlProjectStore(self.session)
        self.tokens = SqlTokenStore(self.session)
        self.datasets = SqlDatasetStore(self.session)
        self.packages = SqlPackageStore(self.session)
        self.jobs = SqlJobStore(self.session)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)

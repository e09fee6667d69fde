"""One metadata-store contract, run on SQLite and on a fresh PostgreSQL schema (``container``):
migrations at start, the stores' rules, and version numbers allocated atomically."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from support.archives import package_zip, zip_bytes

from modelops.adapters.sql.engine import MIGRATIONS, migrate
from modelops.adapters.sql.tables import Base
from modelops.bootstrap import Container, build_container
from modelops.domain.entities import ManifestEntry, Principal
from modelops.domain.errors import AlreadyExists, InvalidInput, NotFound
from modelops.domain.roles import Role
from modelops.settings import Settings

SRC = Path(__file__).resolve().parent.parent / "src"
TESTER = Principal(token_id=0, name="tester", role=Role.ADMIN)


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def entry(path: str, content: str) -> ManifestEntry:
    import hashlib

    return ManifestEntry(path=path, size=len(content), sha256=hashlib.sha256(content.encode()).hexdigest())


# --------------------------------------------------------------------------- schema and migrations


def all_tables_loaded() -> None:
    """Import every SQL adapter module, so Base.metadata holds every table the code defines."""
    import importlib
    import pkgutil

    import modelops.adapters.sql as sql

    for module in pkgutil.iter_modules(sql.__path__, prefix="modelops.adapters.sql."):
        if module.name != "modelops.adapters.sql.migrations":
            importlib.import_module(module.name)


def test_start_applies_every_migration_and_the_schema_matches_the_model(container: Container) -> None:
    all_tables_loaded()
    with container.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_migrating_again_on_restart_changes_nothing(container: Container) -> None:
    with container.uow() as uow:
        uow.projects.add(name="kept", description="", actor="t")
    migrate(container.engine)
    with container.uow() as uow:
        assert [p.name for p in uow.projects.list()] == ["kept"]


def test_sqlite_is_the_default_and_runs_in_wal_mode(tmp_path: Path) -> None:
    built = build_container(Settings(home=tmp_path / "home"))
    try:
        assert built.engine.dialect.name == "sqlite"
        assert built.engine.url.database == str(tmp_path / "home" / "modelops.db")
        with built.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        built.close()


def test_running_code_never_creates_tables_behind_alembics_back() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"\bcreate_all\s*\(", path.read_text())
    ]
    assert offenders == []


def test_server_uses_postgresql_when_the_url_points_at_one(make_server: Any, pg_schema_url: str) -> None:
    server = make_server(MODELOPS_DATABASE_URL=pg_schema_url)
    response = httpx.post(server.url + "/api/v1/projects", json={"name": "on-pg"},
                          headers={"Authorization": f"Bearer {server.token}"})
    assert response.status_code == 201, response.text
    assert not (server.home / "modelops.db").exists()
    engine = create_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM projects")).scalars().all() == ["on-pg"]
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- projects and tokens


def test_projects_add_get_list_and_unique_names(container: Container) -> None:
    with container.uow() as uow:
        beta = uow.projects.add(name="beta", description="second", actor="ann")
        uow.projects.add(name="alpha", description="", actor="ann")
    with container.uow() as uow:
        assert [p.name for p in uow.projects.list()] == ["alpha", "beta"]
        fetched = uow.projects.get("beta")
        assert fetched == uow.projects.get_by_id(beta.id)
        assert (fetched.description, fetched.created_by) == ("second", "ann")
        assert fetched.created_at.tzinfo is not None
        assert fetched.created_at.utcoffset() == UTC.utcoffset(None)
    with pytest.raises(AlreadyExists, match="project 'beta' already exists"), container.uow() as uow:
        uow.projects.add(name="beta", description="", actor="bob")
    with pytest.raises(NotFound, match="project 'gamma' not found"), container.uow() as uow:
        uow.projects.get("gamma")


def test_a_failed_unit_of_work_leaves_nothing_behind(container: Container) -> None:
    with pytest.raises(RuntimeError), container.uow() as uow:
        uow.projects.add(name="half", description="", actor="t")
        raise RuntimeError("crash before commit")
    with container.uow() as uow:
        assert uow.projects.list() == []


def test_project_emptiness_and_delete(container: Container) -> None:
    with container.uow() as uow:
        empty = uow.projects.add(name="empty", description="", actor="t")
        full = uow.projects.add(name="full", description="", actor="t")
        uow.datasets.add(project_id=full.id, name="d", description="", actor="t")
    with container.uow() as uow:
        assert uow.projects.is_empty(empty.id)
        assert not uow.projects.is_empty(full.id)
        uow.projects.delete(empty.id)
    with container.uow() as uow:
        assert [p.name for p in uow.projects.list()] == ["full"]


def test_tokens_find_revoke_and_count(container: Container) -> None:
    with container.uow() as uow:
        before = uow.tokens.count()
        token = uow.tokens.add(name="ci", role=Role.MEMBER, token_hash="h" * 64, actor="admin")
    with container.uow() as uow:
        found = uow.tokens.find_by_hash("h" * 64)
        assert found is not None and found.id == token.id and found.role is Role.MEMBER
        assert found.active and uow.tokens.find_by_hash("x" * 64) is None
        revoked = uow.tokens.revoke(token.id)
        assert not revoked.active and revoked.revoked_at is not None
    with container.uow() as uow:
        assert uow.tokens.revoke(token.id).revoked_at == revoked.revoked_at  # idempotent
        assert uow.tokens.count() == before + 1
        assert uow.tokens.get(token.id).name == "ci"
    with pytest.raises(AlreadyExists), container.uow() as uow:
        uow.tokens.add(name="ci", role=Role.VIEWER, token_hash="z" * 64, actor="admin")
    with pytest.raises(NotFound), container.uow() as uow:
        uow.tokens.revoke(987654)


# --------------------------------------------------------------------------- datasets and packages


def test_dataset_versions_number_from_one_and_keep_their_manifest(container: Container) -> None:
    with container.uow() as uow:
        project = uow.projects.add(name="p", description="", actor="t")
        other = uow.projects.add(name="q", description="", actor="t")
        dataset = uow.datasets.add(project_id=project.id, name="images", description="", actor="t")
        uow.datasets.add(project_id=other.id, name="images", description="", actor="t")  # per project
    files_v1 = [entry("b/x.txt", "x"), entry("a.csv", "1,2")]
    with container.uow() as uow:
        v1 = uow.datasets.add_version(dataset_id=dataset.id, files=files_v1, content_hash="c1",
                                      note="first", actor="t")
        v2 = uow.datasets.add_version(dataset_id=dataset.id, files=[entry("a.csv", "3,4")],
                                      content_hash="c2", note="", actor="t")
    assert (v1.version, v2.version) == (1, 2)
    with container.uow() as uow:
        got = uow.datasets.get_version(dataset.id, 1)
        assert [f.path for f in got.files] == ["a.csv", "b/x.txt"]
        assert set(got.files) == set(files_v1)
        assert (got.file_count, got.total_size, got.note) == (2, 4, "first")
        assert uow.datasets.get_version(dataset.id, 1, with_files=False).files == []
        assert [v.version for v in uow.datasets.list_versions(dataset.id)] == [1, 2]
        assert uow.datasets.get(project.id, "images").latest_version == 2
        with pytest.raises(NotFound, match="dataset version 3 not found"):
            uow.datasets.get_version(dataset.id, 3)
    with pytest.raises(AlreadyExists, match="dataset 'images'"), container.uow() as uow:
        uow.datasets.add(project_id=project.id, name="images", description="", actor="t")


def test_package_versions_major_then_minor(container: Container) -> None:
    fields = {"status": "uploaded", "zip_sha256": "0" * 64, "zip_size": 1, "code_root": "pkg",
              "can_train": True, "can_serve": False, "requirements_sha256": None,
              "lineage": {"source": "upload", "nested": {"k": [1, 2]}}}
    with container.uow() as uow:
        project = uow.projects.add(name="p", description="", actor="t")
        package = uow.packages.get_or_add(project_id=project.id, name="clf", actor="t")
        assert uow.packages.get_or_add(project_id=project.id, name="clf", actor="t") == package
        made = [uow.packages.add_major_version(package_id=package.id, fields=fields, actor="t")
                for _ in range(2)]
        made += [uow.packages.add_minor_version(package_id=package.id, major=1, fields=fields, actor="t")
                 for _ in range(2)]
    assert [m.version for m in made] == ["1.0", "2.0", "1.1", "1.2"]
    with container.uow() as uow:
        assert [v.version for v in uow.packages.list_versions(package.id)] == ["1.0", "1.1", "1.2", "2.0"]
        again = uow.packages.get_version(package.id, 1, 1)
        assert again.lineage == fields["lineage"] and again.can_train and not again.can_serve
        assert uow.packages.get(project.id, "clf").latest_major == 2
        with pytest.raises(NotFound, match="no major version 3"):
            uow.packages.add_minor_version(package_id=package.id, major=3, fields=fields, actor="t")
        with pytest.raises(NotFound, match="version 9.0 not found"):
            uow.packages.get_version(package.id, 9, 0)
        with pytest.raises(NotFound, match="ML package 'nope' not found"):
            uow.packages.get(project.id, "nope")


# --------------------------------------------------------------------------- atomic allocation

RACERS = 16


def race(work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in RACERS threads released together; re-raise the first failure."""
    start = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


@pytest.mark.timeout(180)
def test_concurrent_package_uploads_get_distinct_major_versions(
    container: Container, tmp_path: Path
) -> None:
    container.projects.create(principal=TESTER, name="race")
    archives = []
    for i in range(RACERS):
        path = tmp_path / f"pkg-{i}.zip"
        path.write_bytes(package_zip(extra={"note.txt": str(i).encode()}))
        archives.append(path)
    made = race(lambda i: container.packages.upload(principal=TESTER, project="race", name="clf",
                                                    archive=archives[i]))
    assert sorted(m.major for m in made) == list(range(1, RACERS + 1))
    assert {m.minor for m in made} == {0}
    listed = container.packages.list_versions(principal=TESTER, project="race", name="clf")
    assert len(listed) == RACERS


@pytest.mark.timeout(180)
def test_concurrent_first_uploads_of_a_new_dataset_all_land(container: Container, tmp_path: Path) -> None:
    container.projects.create(principal=TESTER, name="race")
    archives = []
    for i in range(RACERS):
        path = tmp_path / f"data-{i}.zip"
        path.write_bytes(zip_bytes({"rows.csv": f"{i}\n".encode()}))
        archives.append(path)
    made = race(lambda i: container.datasets.upload_version(principal=TESTER, project="race",
                                                            name="fresh", archive=archives[i]))
    assert sorted(v.version for v in made) == list(range(1, RACERS + 1))
    # Each version kept its own upload's content.
    assert sorted(v.files[0].size for v in made) == sorted(len(f"{i}\n") for i in range(RACERS))


def test_free_text_with_nul_is_refused_before_it_reaches_either_database(
    container: Container, tmp_path: Path
) -> None:
    # PostgreSQL text cannot hold NUL: unchecked, this was a database error (a 500) there only.
    container.projects.create(principal=TESTER, name="p")
    archive = tmp_path / "data.zip"
    archive.write_bytes(zip_bytes({"a.csv": b"1\n"}))
    package = tmp_path / "pkg.zip"
    package.write_bytes(package_zip())
    attempts: list[Callable[[], Any]] = [
        lambda: container.projects.create(principal=TESTER, name="q", description="a\x00b"),
        lambda: container.datasets.create(principal=TESTER, project="p", name="d", description="\x00"),
        lambda: container.datasets.upload_version(principal=TESTER, project="p", name="d",
                                                  archive=archive, note="n\x00"),
        lambda: container.packages.upload(principal=TESTER, project="p", name="m", archive=package,
                                          description="\x00"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput, match="must not contain NUL characters"):
            attempt()
    with container.uow() as uow:
        project = uow.projects.get("p")
        assert [p.name for p in uow.projects.list()] == ["p"]
        assert uow.datasets.list(project.id) == [] and uow.packages.list(project.id) == []

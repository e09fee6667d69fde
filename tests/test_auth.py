"""Tokens and roles over real HTTP: 401 without a valid token, 403 below the needed role, the
first-start admin token in a 0600 file, and a loopback-only default bind."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import RunningServer
from support.archives import zip_bytes
from support.servers import api, make_token, new_project, shared_server, unique

from modelops.bootstrap import Container
from modelops.services.auth import hash_token
from modelops.settings import Settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("auth")) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: RunningServer) -> dict[str, str]:
    return {role: make_token(server, role) for role in ("viewer", "member", "approver")} | {
        "admin": server.token
    }


# --------------------------------------------------------------------------- 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/whoami"),
        ("GET", "/projects"),
        ("POST", "/projects"),
        ("GET", "/tokens"),
        ("POST", "/projects/p/datasets/d/versions"),
        ("GET", "/projects/p/packages/m/versions/1.0/download"),
    ],
)
def test_every_request_without_a_token_is_401_with_how_to_send_one(
    server: RunningServer, method: str, path: str
) -> None:
    with api(server, token=None) as client:
        response = client.request(method, path, content=b"{}")
    assert response.status_code == 401
    assert response.json()["detail"] == "missing token: send 'Authorization: Bearer <token>'"
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_unknown_token_or_another_scheme_is_401(server: RunningServer) -> None:
    with api(server, token="mo_not-a-real-token") as client:
        response = client.get("/projects")
    assert response.status_code == 401 and response.json()["detail"] == "unknown token"
    basic = httpx.get(server.url + "/api/v1/projects", headers={"Authorization": f"Basic {server.token}"})
    assert basic.status_code == 401 and "missing token" in basic.json()["detail"]


def test_health_needs_no_token(server: RunningServer) -> None:
    assert httpx.get(server.url + "/api/v1/health").json()["status"] == "ok"


# --------------------------------------------------------------------------- first start, binding


def test_first_start_writes_an_admin_token_readable_by_the_owner_only(server: RunningServer) -> None:
    token_file = server.home / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    secret = token_file.read_text().strip()
    with api(server, token=secret) as client:
        assert client.get("/whoami").json() == {"name": "admin", "role": "admin"}
    # The database keeps only a hash of it.
    with sqlite3.connect(server.home / "modelops.db") as db:
        stored = db.execute("SELECT token_hash FROM api_tokens WHERE name = 'admin'").fetchall()
    assert stored == [(hash_token(secret),)]


def test_admin_token_is_made_on_first_start_only(container: Container, tmp_path: Path) -> None:
    token_file = tmp_path / "secret" / "admin.token"
    first = container.auth.ensure_admin_token(token_file=token_file)
    assert first is not None and token_file.read_text().strip() == first
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert container.auth.ensure_admin_token(token_file=token_file) is None
    assert token_file.read_text().strip() == first
    assert container.auth.authenticate(first).role == "admin"


def test_default_bind_is_loopback(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELOPS_HOST", raising=False)
    assert Settings().host == "127.0.0.1"
    url = json.loads((server.home / "server.json").read_text())["url"]
    assert url.startswith("http://127.0.0.1:")
    listening = {
        conn.laddr.ip
        for conn in psutil.Process(server.process.pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    assert listening == {"127.0.0.1"}


# --------------------------------------------------------------------------- roles


def test_whoami_names_each_tokens_role(server: RunningServer, tokens: dict[str, str]) -> None:
    for role, secret in tokens.items():
        with api(server, token=secret) as client:
            assert client.get("/whoami").json()["role"] == role


def test_viewer_reads_but_cannot_create_upload_or_delete(
    server: RunningServer, tokens: dict[str, str]
) -> None:
    with api(server) as admin:
        project = new_project(admin)
    name = unique("viewer-made")
    with api(server, token=tokens["viewer"]) as viewer:
        assert viewer.get("/projects").status_code == 200
        refused = viewer.post("/projects", json={"name": name})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "this action needs the 'member' role; your token is 'viewer'"
        upload = viewer.post(f"/projects/{project}/datasets/d/versions", content=zip_bytes({"a": b"1"}))
        assert upload.status_code == 403
        assert viewer.delete(f"/projects/{project}").status_code == 403
        assert viewer.get("/tokens").status_code == 403
    with api(server) as admin:
        names = {p["name"] for p in admin.get("/projects").json()["data"]}
        assert project in names and name not in names
        assert admin.get(f"/projects/{project}/datasets").json()["count"] == 0


@pytest.mark.parametrize("role", ["member", "approver"])
def test_member_and_approver_work_on_projects_but_cannot_manage_tokens(
    server: RunningServer, tokens: dict[str, str], role: str
) -> None:
    with api(server, token=tokens[role]) as client:
        project = new_project(client)
        assert client.delete(f"/projects/{project}").status_code == 204
        refused = client.post("/tokens", json={"name": unique("x"), "role": "admin"})
        assert refused.status_code == 403
        assert refused.json()["detail"] == f"this action needs the 'admin' role; your token is '{role}'"
        assert client.get("/tokens").status_code == 403
        assert client.delete("/tokens/1").status_code == 403


def test_admin_creates_lists_and_revokes_tokens(server: RunningServer) -> None:
    name = unique("ci")
    with api(server) as admin:
        created = admin.post("/tokens", json={"name": name, "role": "member"})
        assert created.status_code == 201
        body = created.json()
        assert body["secret"].startswith("mo_") and body["role"] == "member" and body["created_by"] == "admin"
        with api(server, token=body["secret"]) as member:
            assert member.get("/whoami").json() == {"name": name, "role": "member"}
            listed = {t["name"]: t for t in admin.get("/tokens").json()["data"]}
            assert "secret" not in listed[name] and listed[name]["revoked_at"] is None
            revoked = admin.delete(f"/tokens/{body['id']}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
            after = member.get("/whoami")
            assert after.status_code == 401
            assert after.json()["detail"] == f"token '{name}' was revoked"


def test_bad_token_requests_are_4xx_with_reasons(server: RunningServer) -> None:
    name = unique("dup")
    with api(server) as admin:
        assert admin.post("/tokens", json={"name": name, "role": "viewer"}).status_code == 201
        duplicate = admin.post("/tokens", json={"name": name, "role": "viewer"})
        assert duplicate.status_code == 409 and f"token '{name}' already exists" in duplicate.json()["detail"]
        bad_role = admin.post("/tokens", json={"name": unique("r"), "role": "root"})
        assert bad_role.status_code == 400
        assert bad_role.json()["detail"] == "unknown role 'root': choose one of viewer, member, approver, admin"
        bad_name = admin.post("/tokens", json={"name": "no spaces", "role": "viewer"})
        assert bad_name.status_code == 400 and "invalid token name" in bad_name.json()["detail"]
        unknown = admin.delete("/tokens/987654")
        assert unknown.status_code == 404 and "token 987654 not found" in unknown.json()["detail"]
        missing = admin.post("/tokens", json={"role": "viewer"})
        assert missing.status_code == 422 and "name" in missing.json()["detail"]

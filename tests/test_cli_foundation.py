"""The real ``modelops`` command (a subprocess) against a real server: tokens, projects,
datasets and ML packages, in tables and in --json, with clean one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MODELOPS_BIN, RunningServer, start_server

TRAIN_PY = """
class Main:
    def __init__(self):
        self.model = None

    def train(self, data_directory):
        self.model = data_directory

    def evaluate(self, data_directory):
        return {}

    def save(self):
        pass
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module: each test works in its own projects, so none depends on another."""
    base = tmp_path_factory.mktemp("cli")
    # Every command here is a fresh interpreter: let them share compiled bytecode, even where the
    # environment turns writing it off, or start-up dominates the module's run time.
    running = start_server(base / "home", extra_env={"PYTHONDONTWRITEBYTECODE": "",
                                                     "PYTHONPYCACHEPREFIX": str(base / "pycache")})
    try:
        yield running
    finally:
        running.stop()


def run(server: RunningServer, *args: str, cwd: Path | None = None,
        env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """Like ``server.cli`` but with a working folder and environment changes (None removes)."""
    full: dict[str, str | None] = dict(server.env, MODELOPS_URL=server.url,
                                       MODELOPS_TOKEN=server.token, COLUMNS="200", NO_COLOR="1")
    full.update(env or {})
    return subprocess.run([MODELOPS_BIN, *args], env={k: v for k, v in full.items() if v is not None},
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ok_json(result: subprocess.CompletedProcess[str]) -> object:
    return json.loads(ok(result))


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, nothing on stdout, exactly one 'error: …' line on stderr holding every fragment."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_projects_create_list_show_delete(server: RunningServer) -> None:
    assert "Created project 'alpha'" in ok(server.cli("projects", "create", "alpha",
                                                      "--description", "first [bold]try[/]"))
    created = ok_json(server.cli("projects", "create", "beta", "--json"))
    assert isinstance(created, dict) and created["name"] == "beta"

    table = ok(server.cli("projects", "list"))
    assert "alpha" in table and "first [bold]try[/]" in table  # a description is not markup
    listed = ok_json(server.cli("projects", "list", "--json"))
    assert isinstance(listed, list) and {"alpha", "beta"} <= {p["name"] for p in listed}

    shown = ok(server.cli("projects", "show", "alpha"))
    assert "first [bold]try[/]" in shown and "datasets" in shown
    assert ok_json(server.cli("projects", "show", "alpha", "--json"))["created_by"] == "admin"

    one_line_error(server.cli("projects", "create", "alpha"), "project 'alpha' already exists", "409")

    assert ok_json(server.cli("projects", "delete", "beta", "--json")) == {"deleted": "beta"}
    assert "Deleted project 'alpha'" in ok(server.cli("projects", "delete", "alpha"))
    one_line_error(server.cli("projects", "show", "alpha"), "project 'alpha' not found", "404")


def test_tokens_create_list_revoke_and_refused_tokens(server: RunningServer, tmp_path: Path) -> None:
    created = ok_json(server.cli("tokens", "create", "ci-bot", "--role", "member", "--json"))
    assert isinstance(created, dict) and created["secret"].startswith("mo_")
    # Without --json the secret alone is on stdout, so a script can capture it.
    human = server.cli("tokens", "create", "viewer-bot", "--role", "viewer")
    assert ok(human).strip().startswith("mo_") and len(human.stdout.strip().splitlines()) == 1
    assert "shown only once" in human.stderr

    assert {"ci-bot", "viewer-bot"} <= set(ok(server.cli("tokens", "list")).split())
    listed = {t["name"]: t for t in ok_json(server.cli("tokens", "list", "--json"))}
    assert listed["ci-bot"]["role"] == "member" and listed["viewer-bot"]["revoked_at"] is None

    member = created["secret"]
    ok(server.cli("projects", "list", token=member))  # the new token works...
    one_line_error(server.cli("tokens", "list", token=member), "needs the 'admin' role", "403")
    one_line_error(server.cli("tokens", "create", "x", "--role", "wizard"), "unknown role 'wizard'")

    revoked = ok_json(server.cli("tokens", "revoke", str(created["id"]), "--json"))
    assert revoked["name"] == "ci-bot" and revoked["revoked_at"] is not None
    # ...until it is revoked; the error names the token and says how to pass another.
    one_line_error(server.cli("projects", "list", token=member), "token 'ci-bot' was revoked",
                   "MODELOPS_TOKEN")
    viewer_id = str(listed["viewer-bot"]["id"])
    assert "Revoked token 'viewer-bot'" in ok(server.cli("tokens", "revoke", viewer_id))

    # No token at all: neither in the environment nor an admin token file in MODELOPS_HOME.
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    one_line_error(run(server, "projects", "list", env={"MODELOPS_TOKEN": None,
                                                        "MODELOPS_HOME": str(empty_home)}),
                   "missing token", "401", "MODELOPS_TOKEN")


def test_dataset_folder_upload_subfolder_download_versions_and_diff(
    server: RunningServer, tmp_path: Path
) -> None:
    ok(server.cli("projects", "create", "vision"))
    assert "Created dataset 'cats'" in ok(server.cli("datasets", "create", "vision", "cats",
                                                     "--description", "cat pictures"))
    source = write_files(tmp_path / "cats", {
        "train/a.bin": os.urandom(3000), "train/deep/b.txt": b"bee\n", "test/c.txt": b"sea\n",
    })
    first = ok_json(server.cli("datasets", "upload", "vision", "cats", str(source), "--json"))
    assert first["version"] == 1 and first["file_count"] == 3

    # Version 2 from a zip file: one file changed, one added, one removed.
    (source / "train/deep/b.txt").write_bytes(b"bee, changed\n")
    (source / "test/c.txt").unlink()
    (source / "train/new.txt").write_bytes(b"new\n")
    archive = tmp_path / "cats-v2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(source).as_posix())
    uploaded = ok(server.cli("datasets", "upload", "vision", "cats", str(archive), "--note", "fix b"))
    assert "version 2: 3 files" in uploaded

    listed = ok_json(server.cli("datasets", "list", "vision", "--json"))
    assert [(d["name"], d["latest_version"]) for d in listed] == [("cats", 2)]
    assert "cat pictures" in ok(server.cli("datasets", "list", "vision"))
    versions = ok_json(server.cli("datasets", "versions", "vision", "cats", "--json"))
    assert [(v["version"], v["note"]) for v in versions] == [(1, ""), (2, "fix b")]
    assert "fix b" in ok(server.cli("datasets", "versions", "vision", "cats"))

    detail = ok_json(server.cli("datasets", "show", "vision", "cats", "2", "--json"))
    assert sorted(f["path"] for f in detail["files"]) == ["train/a.bin", "train/deep/b.txt",
                                                          "train/new.txt"]
    manifest = ok(server.cli("datasets", "show", "vision", "cats", "1"))
    a_sha = hashlib.sha256((source / "train/a.bin").read_bytes()).hexdigest()
    assert "test/c.txt" in manifest and a_sha in manifest

    out = tmp_path / "dl" / "train.zip"
    saved = ok_json(server.cli("datasets", "download", "vision", "cats", "2", "--folder", "train",
                               "-o", str(out), "--json"))
    assert saved == {"path": str(out.resolve()), "size": out.stat().st_size}
    with zipfile.ZipFile(out) as zf:
        got = {name: zf.read(name) for name in zf.namelist()}
    assert got == {rel: (source / rel).read_bytes()
                   for rel in ("train/a.bin", "train/deep/b.txt", "train/new.txt")}

    # Without -o the zip lands in the working folder under the server's name.
    here = tmp_path / "here"
    here.mkdir()
    assert "Saved" in ok(run(server, "datasets", "download", "vision", "cats", "1", cwd=here))
    with zipfile.ZipFile(here / "cats-v1.zip") as zf:
        assert sorted(zf.namelist()) == ["test/c.txt", "train/a.bin", "train/deep/b.txt"]

    diff = ok_json(server.cli("datasets", "diff", "vision", "cats", "1", "2", "--json"))
    assert [e["path"] for e in diff["added"]] == ["train/new.txt"]
    assert [e["path"] for e in diff["removed"]] == ["test/c.txt"]
    assert [e["path"] for e in diff["changed"]] == ["train/deep/b.txt"]
    assert diff["unchanged"] == 1
    table = ok(server.cli("datasets", "diff", "vision", "cats", "1", "2"))
    assert "1 added, 1 removed, 1 changed, 1 unchanged" in table and "train/new.txt" in table


def test_dataset_errors_are_one_clear_line(server: RunningServer, tmp_path: Path) -> None:
    ok(server.cli("projects", "create", "errs"))
    one_line_error(server.cli("datasets", "list", "no-such-project"), "project 'no-such-project' not found")
    one_line_error(server.cli("datasets", "upload", "errs", "d", str(tmp_path / "missing")),
                   "no such file or folder")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not an archive")
    one_line_error(server.cli("datasets", "upload", "errs", "d", str(junk)), "not a zip or tar archive")
    ok(server.cli("datasets", "upload", "errs", "d", str(write_files(tmp_path / "d", {"x": b"1"}))))
    out = tmp_path / "never.zip"
    one_line_error(server.cli("datasets", "download", "errs", "d", "1", "--folder", "nope",
                              "-o", str(out)), "folder 'nope' does not exist")
    assert list(tmp_path.glob("*never*")) == [] and list(tmp_path.glob(".never*")) == []
    one_line_error(server.cli("projects", "delete", "errs"), "is not empty", "409")

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    one_line_error(run(server, "projects", "list", env={"MODELOPS_URL": f"http://127.0.0.1:{closed}"}),
                   "cannot reach the modelops server")


def test_packages_upload_list_show_download(server: RunningServer, tmp_path: Path) -> None:
    ok(server.cli("projects", "create", "pk"))
    folder = write_files(tmp_path / "clf", {"train.py": TRAIN_PY.encode(), "util/helpers.py": b"X = 1\n"})
    assert "version 1.0 (train;" in ok(server.cli("packages", "upload", "pk", "clf", str(folder),
                                                  "--description", "baseline"))
    archive = tmp_path / "clf.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.py", TRAIN_PY)
        zf.writestr("main.py", "class Main:\n    def __init__(self): ...\n    def predict(self, x): ...\n")
    second = ok_json(server.cli("packages", "upload", "pk", "clf", str(archive), "--json"))
    assert second["version"] == "2.0" and second["can_train"] and second["can_serve"]

    assert [(p["name"], p["latest_major"]) for p in ok_json(server.cli("packages", "list", "pk", "--json"))] \
        == [("clf", 2)]
    assert "clf" in ok(server.cli("packages", "list", "pk"))
    versions = ok_json(server.cli("packages", "versions", "pk", "clf", "--json"))
    assert [v["version"] for v in versions] == ["1.0", "2.0"]
    assert "train, serve" in ok(server.cli("packages", "versions", "pk", "clf"))
    shown = ok(server.cli("packages", "show", "pk", "clf", "1.0"))
    assert "baseline" in shown and "uploaded" in shown
    assert ok_json(server.cli("packages", "show", "pk", "clf", "2.0", "--json"))["zip_sha256"] == \
        second["zip_sha256"]

    out = tmp_path / "got.zip"
    assert "Saved" in ok(server.cli("packages", "download", "pk", "clf", "2.0", "-o", str(out)))
    assert out.read_bytes() == archive.read_bytes()
    saved = ok_json(server.cli("packages", "download", "pk", "clf", "1.0", "-o", str(tmp_path), "--json"))
    with zipfile.ZipFile(saved["path"]) as zf:
        assert sorted(zf.namelist()) == ["train.py", "util/helpers.py"]


def test_package_missing_method_shows_the_servers_reason(server: RunningServer, tmp_path: Path) -> None:
    ok(server.cli("projects", "create", "broken"))
    folder = write_files(tmp_path / "pkg", {"train.py": TRAIN_PY.replace("def evaluate", "def assess")
                                            .encode()})
    one_line_error(server.cli("packages", "upload", "broken", "clf", str(folder)),
                   "invalid ML package", "train.py: class Main is missing method(s) 'evaluate'", "400")
    assert ok_json(server.cli("packages", "list", "broken", "--json")) == []


def test_progress_bars_go_to_stderr_and_never_into_json(server: RunningServer, tmp_path: Path) -> None:
    ok(server.cli("projects", "create", "prog"))
    folder = write_files(tmp_path / "big", {"blob.bin": os.urandom(3 * 1024 * 1024)})
    # TTY_COMPATIBLE makes Rich treat the pipes as terminals: the worst case for stray output.
    tty = {"TTY_COMPATIBLE": "1"}
    human = run(server, "datasets", "upload", "prog", "big", str(folder), env=tty)
    assert ok(human).strip().startswith("Uploaded dataset 'big' version 1")
    assert "upload big" in human.stderr and "MB" in human.stderr  # the bar was drawn, on stderr

    for args in (["datasets", "upload", "prog", "big", str(folder)],
                 ["datasets", "download", "prog", "big", "1", "-o", str(tmp_path / "o.zip")]):
        result = run(server, *args, "--json", env=tty)
        assert isinstance(json.loads(ok(result)), dict)
        assert result.stderr == ""

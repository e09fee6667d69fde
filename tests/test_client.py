"""The typed Python client against a real server: every foundation method, streaming
transfers with flat memory, and downloads that never leave a partial file behind."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import threading
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer, start_server

from modelops.client import ApiError, ModelOpsClient

TRAIN_PY = (
    "class Main:\n"
    "    def __init__(self): ...\n"
    "    def train(self, data_directory): ...\n"
    "    def evaluate(self, data_directory): ...\n"
    "    def save(self): ...\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module; every test uses its own project names."""
    running = start_server(tmp_path_factory.mktemp("client") / "home")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(server: RunningServer) -> Iterator[ModelOpsClient]:
    with server.client() as api:
        yield api


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_tokens_round_trip(server: RunningServer, client: ModelOpsClient) -> None:
    created = client.tokens.create("reader", "viewer")
    assert created["role"] == "viewer" and created["secret"].startswith("mo_")
    assert "secret" not in next(t for t in client.tokens.list() if t["id"] == created["id"])
    with server.client(created["secret"]) as reader:
        assert reader.whoami() == {"name": "reader", "role": "viewer"}
        with pytest.raises(ApiError) as denied:
            reader.projects.create("not-allowed")
        assert denied.value.status == 403 and "'member' role" in denied.value.detail
        revoked = client.tokens.revoke(created["id"])
        assert revoked["revoked_at"] is not None
        with pytest.raises(ApiError) as refused:
            reader.projects.list()
        assert refused.value.status == 401 and "revoked" in refused.value.detail
    with pytest.raises(ApiError) as bad_role:
        client.tokens.create("x", "wizard")
    assert bad_role.value.status == 400 and "unknown role" in bad_role.value.detail


def test_projects_round_trip(client: ModelOpsClient) -> None:
    created = client.projects.create("cp-one", description="for the client test")
    assert client.projects.get("cp-one") == created
    assert created in client.projects.list()
    client.projects.delete("cp-one")
    with pytest.raises(ApiError) as missing:
        client.projects.get("cp-one")
    assert missing.value.status == 404 and missing.value.detail == "project 'cp-one' not found"


def test_datasets_round_trip(client: ModelOpsClient, tmp_path: Path) -> None:
    client.projects.create("cd")
    made = client.datasets.create("cd", "rows", description="some rows")
    assert made["latest_version"] == 0 and client.datasets.get("cd", "rows") == made

    folder = write_files(tmp_path / "rows", {"train/a.csv": b"a,b\n1,2\n", "test/b.csv": b"b\n"})
    first = client.datasets.upload_version("cd", "rows", folder, note="first")
    assert (first["version"], first["file_count"], first["note"]) == (1, 2, "first")

    # An existing tar file is sent as it is; a new name creates the dataset.
    archive = tmp_path / "rows.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(folder / "train/a.csv", arcname="train/a.csv")
        tf.add(folder / "test/b.csv", arcname="test/b.csv")
        payload = b"c\n"
        info = tarfile.TarInfo("train/c.csv")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    second = client.datasets.upload_version("cd", "rows", archive)
    assert second["version"] == 2
    assert [d["name"] for d in client.datasets.list("cd")] == ["rows"]
    assert [v["version"] for v in client.datasets.list_versions("cd", "rows")] == [1, 2]
    assert client.datasets.get_version("cd", "rows", 1)["files"] == first["files"]

    diff = client.datasets.diff("cd", "rows", 1, 2)
    assert [e["path"] for e in diff["added"]] == ["train/c.csv"]
    assert (diff["removed"], diff["changed"], diff["unchanged"]) == ([], [], 2)

    whole = client.datasets.download_version("cd", "rows", 1, tmp_path / "out" / "v1.zip")
    assert zip_members(whole) == {"train/a.csv": b"a,b\n1,2\n", "test/b.csv": b"b\n"}
    # An existing folder as destination: the file takes the server's name.
    train = client.datasets.download_version("cd", "rows", 2, tmp_path, folder="train")
    assert train == tmp_path / "rows-v2-train.zip"
    assert zip_members(train) == {"train/a.csv": b"a,b\n1,2\n", "train/c.csv": b"c\n"}


def test_packages_round_trip(client: ModelOpsClient, tmp_path: Path) -> None:
    client.projects.create("cpk")
    folder = write_files(tmp_path / "pkg", {"train.py": TRAIN_PY.encode()})
    first = client.packages.upload("cpk", "clf", folder, description="from a folder")
    assert (first["version"], first["can_train"], first["can_serve"]) == ("1.0", True, False)
    assert first["lineage"]["description"] == "from a folder"
    zipped = tmp_path / "clf.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("clf/train.py", TRAIN_PY)
    second = client.packages.upload("cpk", "clf", zipped)
    assert (second["version"], second["code_root"]) == ("2.0", "clf")

    assert client.packages.get("cpk", "clf")["latest_major"] == 2
    assert [p["name"] for p in client.packages.list("cpk")] == ["clf"]
    assert [v["version"] for v in client.packages.list_versions("cpk", "clf")] == ["1.0", "2.0"]
    assert client.packages.get_version("cpk", "clf", "2.0") == second
    saved = client.packages.download_version("cpk", "clf", "2.0", tmp_path / "got.zip")
    assert saved.read_bytes() == zipped.read_bytes()
    assert zip_members(client.packages.download_version("cpk", "clf", "1.0", tmp_path)) == {
        "train.py": TRAIN_PY.encode()
    }

    broken = write_files(tmp_path / "broken", {"main.py": b"class Main:\n    def predict(self, x): ...\n"})
    with pytest.raises(ApiError) as refused:
        client.packages.upload("cpk", "clf", broken)
    assert refused.value.status == 400 and "missing method(s) '__init__'" in refused.value.detail
    assert len(client.packages.list_versions("cpk", "clf")) == 2


def test_large_transfers_stream_with_flat_memory(client: ModelOpsClient, tmp_path: Path) -> None:
    size = 24 * 1024 * 1024
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("train.py", TRAIN_PY)
        with zf.open("weights.bin", "w", force_zip64=True) as sink:
            for _ in range(size // (1024 * 1024)):
                sink.write(os.urandom(1024 * 1024))
    client.projects.create("big")
    seen: list[tuple[int, int | None]] = []

    tracemalloc.start()
    try:
        uploaded = client.packages.upload("big", "heavy", archive,
                                          progress=lambda done, total: seen.append((done, total)))
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        saved = client.packages.download_version("big", "heavy", "1.0", tmp_path / "back.zip")
        download_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    total = archive.stat().st_size
    assert uploaded["zip_size"] == total and saved.stat().st_size == total
    # The body went out chunk by chunk (one progress report per chunk), never as one buffer.
    assert len(seen) > 20 and seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert upload_peak < 8 * 1024 * 1024, upload_peak
    assert download_peak < 8 * 1024 * 1024, download_peak


def test_failed_download_leaves_no_partial_file(client: ModelOpsClient, tmp_path: Path) -> None:
    client.projects.create("atomic")
    client.datasets.upload_version("atomic", "d", write_files(tmp_path / "d", {"x.txt": b"x"}))
    target = tmp_path / "out"
    target.mkdir()
    existing = target / "keep.zip"
    existing.write_bytes(b"previous download")
    with pytest.raises(ApiError) as refused:
        client.datasets.download_version("atomic", "d", 1, existing, folder="missing")
    assert refused.value.status == 400 and "does not exist" in refused.value.detail
    assert existing.read_bytes() == b"previous download"
    assert os.listdir(target) == ["keep.zip"]


def test_truncated_download_is_discarded(tmp_path: Path) -> None:
    """A server that dies mid-body: the client reports it and keeps no partial file."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_half() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
                         b"Content-Length: 100000\r\n\r\n" + b"P" * 1000)

    thread = threading.Thread(target=serve_half, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with ModelOpsClient(url, "mo_test") as api, pytest.raises(ApiError) as failed:
            api.packages.download_version("p", "clf", "1.0", tmp_path / "half.zip")
    finally:
        thread.join(timeout=10)
        listener.close()
    assert failed.value.status == 0
    assert os.listdir(tmp_path) == []


def test_unreachable_server_is_an_api_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ModelOpsClient(f"http://127.0.0.1:{port}", "mo_test") as api:
        with pytest.raises(ApiError) as failed:
            api.projects.list()
        assert failed.value.status == 0 and "cannot reach" in failed.value.detail
        with pytest.raises(FileNotFoundError):
            api.packages.upload("p", "clf", tmp_path / "missing")

"""The artifact store contract, run on local disk, fsspec memory:// and a real S3-compatible
server (moto, started here); plus flat memory for a 1 GB blob and a server storing on S3."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.archives import package_zip, zip_bytes
from support.servers import api, new_project

from modelops.adapters.artifacts import (
    FsspecArtifactStore,
    LocalArtifactStore,
    build_artifact_store,
)
from modelops.domain.errors import InvalidInput, NotFound
from modelops.ports import ArtifactStore

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
BUCKET = "modelops-test"
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on a free loopback port, with one bucket; dummy credentials in env."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in DUMMY_AWS.items():
            env.setenv(key, value)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/moto-api/", timeout=1)
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"moto did not start; see {log.name}") from None
                    time.sleep(0.1)
            import s3fs

            s3fs.S3FileSystem(client_kwargs={"endpoint_url": url}).mkdir(BUCKET)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)
            log.close()


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the process's temp folder at a test folder, to see local spools left behind."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, spool_dir: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "artifacts")
        return
    prefix = uuid.uuid4().hex  # one fresh prefix per test: memory:// and the bucket outlive it
    if request.param == "memory":
        remote = FsspecArtifactStore(f"memory://{prefix}")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        remote = FsspecArtifactStore(f"s3://{BUCKET}/{prefix}", client_kwargs={"endpoint_url": endpoint})
    yield remote
    if remote.fs.exists(remote.base):
        remote.fs.rm(remote.base, recursive=True)


def stored(store: ArtifactStore, folder: str = "blobs") -> list[str]:
    """Every object under the store's blobs/ (or tmp/) folder, read from the backend itself."""
    if isinstance(store, LocalArtifactStore):
        root = store.root / folder
        return sorted(p.name for p in root.rglob("*") if p.is_file())
    assert isinstance(store, FsspecArtifactStore)
    store.fs.invalidate_cache()
    base = f"{store.base}/{folder}"
    return sorted(Path(p).name for p in store.fs.find(base)) if store.fs.exists(base) else []


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- the contract


def test_put_returns_the_content_hash_and_reads_back_the_same_bytes(store: ArtifactStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    chunks = [data[i : i + 700_000] for i in range(0, len(data), 700_000)]
    ref = store.put_stream(iter(chunks))
    assert (ref.sha256, ref.size) == (sha(data), len(data))
    assert store.exists(ref.sha256)
    with store.open(ref.sha256) as handle:
        assert handle.read(10) == data[:10]  # a stream: partial reads work
        assert handle.read() == data[10:]
    assert stored(store) == [ref.sha256]


def test_identical_content_is_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    first = store.put_stream([b"same ", b"bytes"])
    second = store.put_stream([b"same bytes"])
    source = tmp_path / "same.txt"
    source.write_bytes(b"same bytes")
    third = store.put_file(source)
    assert first == second == third
    store.put_stream([b"other bytes"])
    assert stored(store) == sorted([sha(b"same bytes"), sha(b"other bytes")])


def test_empty_content_is_a_blob_too(store: ArtifactStore) -> None:
    ref = store.put_stream([])
    assert (ref.sha256, ref.size) == (sha(b""), 0)
    with store.open(ref.sha256) as handle:
        assert handle.read() == b""


def test_nothing_is_visible_while_a_put_is_under_way(store: ArtifactStore) -> None:
    seen_midway: list[list[str]] = []

    def source() -> Iterator[bytes]:
        yield b"first half "
        seen_midway.append(stored(store))
        yield b"second half"

    ref = store.put_stream(source())
    assert seen_midway == [[]]
    assert stored(store) == [ref.sha256]
    assert stored(store, "tmp") == []


def test_a_source_failing_half_way_leaves_no_blob_and_no_temp_file(
    store: ArtifactStore, spool_dir: Path
) -> None:
    def source() -> Iterator[bytes]:
        yield os.urandom(2 * 1024 * 1024)
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_stream(source())
    assert stored(store) == []
    assert stored(store, "tmp") == []
    assert list(spool_dir.iterdir()) == []


def test_unknown_blob_is_not_found_and_a_bad_hash_is_refused(store: ArtifactStore) -> None:
    missing = sha(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.open(missing)
    with pytest.raises(InvalidInput):
        store.open("../../etc/passwd")


def test_fetch_to_writes_the_file_whole(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    ref = store.put_stream([data])
    destination = tmp_path / "out" / "nested" / "file.bin"
    store.fetch_to(ref.sha256, destination)
    assert destination.read_bytes() == data
    assert sorted(p.name for p in destination.parent.iterdir()) == ["file.bin"]


def test_concurrent_puts_of_the_same_content_agree(store: ArtifactStore) -> None:
    data = os.urandom(512 * 1024)
    refs: list[object] = []
    threads = [threading.Thread(target=lambda: refs.append(store.put_stream([data]))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refs) == 6 and len(set(refs)) == 1  # type: ignore[arg-type]
    assert stored(store) == [sha(data)]
    assert stored(store, "tmp") == []


def test_build_artifact_store_chooses_by_url(tmp_path: Path) -> None:
    assert isinstance(build_artifact_store(str(tmp_path / "a")), LocalArtifactStore)
    local = build_artifact_store(f"file://{tmp_path / 'b'}")
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "b"
    assert isinstance(build_artifact_store(f"memory://{uuid.uuid4().hex}"), FsspecArtifactStore)


# --------------------------------------------------------------------------- memory stays flat

CHILD = r"""
import hashlib, json, os, resource, sys
from pathlib import Path
from modelops.adapters.artifacts.local import LocalArtifactStore

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

store = LocalArtifactStore(Path(sys.argv[1]))
size = int(sys.argv[2])
block = bytearray(os.urandom(1 << 20))
baseline = peak()
sent = hashlib.sha256()

def source():
    for i in range(size >> 20):
        block[:8] = i.to_bytes(8, "big")  # every chunk differs
        chunk = bytes(block)
        sent.update(chunk)
        yield chunk

ref = store.put_stream(source())
received, total = hashlib.sha256(), 0
with store.open(ref.sha256) as handle:
    while chunk := handle.read(1 << 20):
        received.update(chunk)
        total += len(chunk)
print(json.dumps({"baseline": baseline, "peak": peak(), "size": ref.size, "sha": ref.sha256,
                  "sent": sent.hexdigest(), "received": received.hexdigest(), "read": total}))
"""


@pytest.mark.timeout(300)
def test_one_gigabyte_streams_in_and_out_with_flat_memory(tmp_path: Path) -> None:
    """Slow-ish (about 10 s): 1 GiB made on the fly in a child process, never kept in memory."""
    size = 1024**3
    root = tmp_path / "big-artifacts"
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(size)],
                              capture_output=True, text=True, timeout=280, check=True)
        report = json.loads(done.stdout)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # a 1 GiB blob must not outlive the test
    assert report["size"] == report["read"] == size
    assert report["sha"] == report["sent"] == report["received"]
    grown = report["peak"] - report["baseline"]
    assert grown < 200 * 1024**2, f"peak memory grew by {grown / 1024**2:.0f} MiB for a 1 GiB blob"


# --------------------------------------------------------------------------- a server on S3


def test_server_keeps_its_artifacts_in_s3_when_told_to(make_server: Any, s3_endpoint: str) -> None:
    import s3fs

    prefix = f"srv-{uuid.uuid4().hex[:8]}"
    server = make_server(
        MODELOPS_ARTIFACTS_URL=f"s3://{BUCKET}/{prefix}", AWS_ENDPOINT_URL=s3_endpoint, **DUMMY_AWS
    )
    package = package_zip()
    with api(server) as client:
        project = new_project(client)
        base = f"/projects/{project}"
        uploaded = client.post(f"{base}/packages/clf/versions", content=package)
        assert uploaded.status_code == 201, uploaded.text
        data = client.post(f"{base}/datasets/d/versions", content=zip_bytes({"a.csv": b"1,2\n"}))
        assert data.status_code == 201, data.text
        download = client.get(f"{base}/packages/clf/versions/1.0/download")
        assert download.content == package
    bucket = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    names = {Path(p).name for p in bucket.find(f"{BUCKET}/{prefix}/blobs")}
    assert names == {sha(package), sha(b"1,2\n")}
    assert not (server.home / "artifacts").exists()

"""Bad input gets a 4xx naming the problem; never a 500, and a rejected upload leaves no
version row, no new blob and nothing in the scratch space. One server with small limits."""

from __future__ import annotations

import io
import os
import random
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import RunningServer
from support.archives import (
    MAIN_OK,
    TRAIN_OK,
    noise,
    package_zip,
    tar_bytes,
    tar_with_link,
    zip_bytes,
    zip_with_symlink,
)
from support.servers import api, blob_names, leftovers, new_project, row_count, shared_server

LIMITS = {
    "MODELOPS_ARCHIVE_MAX_ENTRIES": "10",
    "MODELOPS_ARCHIVE_MAX_TOTAL_BYTES": "2000000",
    "MODELOPS_ARCHIVE_MAX_RATIO": "50",
    "MODELOPS_MAX_UPLOAD_BYTES": "2000000",
}
TABLES = ("datasets", "dataset_versions", "dataset_files", "model_packages", "model_versions")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("bad"), **LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def project(server: RunningServer) -> str:
    with api(server) as client:
        return new_project(client, "bad")


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with api(server) as http:
        yield http


def rejected(server: RunningServer, send: Callable[[], httpx.Response], status: int,
             words: str) -> dict[str, Any]:
    """Send a request that must fail with ``status`` and ``words`` in its detail, changing nothing."""
    rows = {table: row_count(server.home, table) for table in TABLES}
    blobs = blob_names(server.home)
    response = send()
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert words in body["detail"], body
    assert {table: row_count(server.home, table) for table in TABLES} == rows
    assert blob_names(server.home) == blobs
    assert leftovers(server.home) == []
    return body


def noise_hex(size: int) -> bytes:
    """Text that compresses only about two-fold: big, but no bomb."""
    return random.Random(7).randbytes(size // 2).hex().encode()


def corrupt(data: bytes, start: int, stop: int) -> bytes:
    spoiled = bytearray(data)
    for i in range(start, stop):
        spoiled[i] ^= 0x5A
    return bytes(spoiled)


GOOD = {"good.txt": b"fine"}
HOSTILE_ZIPS: dict[str, tuple[bytes, int, str]] = {
    "not-an-archive": (noise(3000), 400, "not a zip or tar archive"),
    "truncated-zip": (zip_bytes({"a.bin": noise(40_000)})[:20_000], 400, "not a zip or tar archive"),
    "corrupt-deflate": (corrupt(zip_bytes({"a.txt": noise(1000) + b"x" * 100_000}), 80, 500),
                        400, "malformed zip archive"),
    "dotdot": (zip_bytes({**GOOD, "../../escape.txt": b"x"}), 400, "contains '..'"),
    "absolute": (zip_bytes({**GOOD, "/tmp/escape.txt": b"x"}), 400, "has an absolute path"),
    "zip-symlink": (zip_with_symlink("link", "../../../etc/passwd", before=GOOD), 400, "points outside"),
    "too-many-entries": (zip_bytes({f"f{i}.txt": b"x" for i in range(11)}), 400,
                         "archive has more than 10 entries"),
    "too-big-unpacked": (zip_bytes({"a.txt": noise_hex(1_200_000), "b.txt": noise_hex(1_000_000)}), 413,
                         "archive expands to more than 2000000 bytes"),
    "compression-bomb": (zip_bytes({"zeros.bin": bytes(1_500_000)}), 400, "compression bomb"),
    "duplicate-entry": (b"", 400, "appears twice"),  # filled in below (zipfile warns when writing it)
}


def _duplicate_entry_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"one")
        info = zipfile.ZipInfo("a.txt")
        archive.writestr(info, b"two")
    return buffer.getvalue()


HOSTILE_TARS: dict[str, tuple[bytes, int, str]] = {
    "corrupt-tar-gz": (corrupt(tar_bytes({"a.txt": noise(1000) + b"x" * 100_000}), 300, 700),
                       400, "malformed tar archive"),
    "tar-dotdot": (tar_bytes({**GOOD, "../escape.txt": b"x"}), 400, "contains '..'"),
    "tar-absolute": (tar_bytes({"/tmp/escape.txt": b"x"}), 400, "has an absolute path"),
    "tar-symlink": (tar_with_link("data/link", "../../../etc", hard=False, before=GOOD), 400,
                    "points outside"),
    "tar-hardlink": (tar_with_link("hard", "/etc/passwd", hard=True, before=GOOD), 400, "points outside"),
    "tar-too-many": (tar_bytes({f"f{i}": b"x" for i in range(11)}), 400, "more than 10 entries"),
    "tar-bomb": (tar_bytes({"zeros.bin": bytes(1_500_000)}), 400, "compression bomb"),
    "tar-not-utf8-name": (b"", 400, "not valid UTF-8"),  # filled in below
}


def _latin1_named_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as archive:
        info = tarfile.TarInfo("caf\xe9.csv")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    return buffer.getvalue()


with pytest.warns(UserWarning):
    HOSTILE_ZIPS["duplicate-entry"] = (_duplicate_entry_zip(), 400, "appears twice")
HOSTILE_TARS["tar-not-utf8-name"] = (_latin1_named_tar(), 400, "not valid UTF-8")


# --------------------------------------------------------------------------- hostile archives


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS | HOSTILE_TARS))
def test_hostile_dataset_archive_is_refused_cleanly(
    server: RunningServer, client: httpx.Client, project: str, case: str
) -> None:
    data, status, words = (HOSTILE_ZIPS | HOSTILE_TARS)[case]
    rejected(server, lambda: client.post(f"/projects/{project}/datasets/d/versions", content=data),
             status, words)
    assert not (server.home / "work" / "escape.txt").exists()


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_package_zip_is_refused_cleanly(
    server: RunningServer, client: httpx.Client, project: str, case: str
) -> None:
    data, status, words = HOSTILE_ZIPS[case]
    rejected(server, lambda: client.post(f"/projects/{project}/packages/m/versions", content=data),
             status, words)


def test_upload_over_the_size_limit_is_413(server: RunningServer, client: httpx.Client, project: str) -> None:
    body = rejected(server, lambda: client.post(f"/projects/{project}/datasets/d/versions",
                                                content=os.urandom(2_100_000)),
                    413, "upload is larger than the limit of 2000000 bytes")
    assert body["error"] == "PayloadTooLarge"


def test_streamed_upload_over_the_limit_without_a_length_is_413(
    server: RunningServer, client: httpx.Client, project: str
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        for _ in range(30):
            yield os.urandom(100_000)

    rejected(server, lambda: client.post(f"/projects/{project}/datasets/d/versions", content=chunks()),
             413, "larger than the limit")


@pytest.mark.parametrize("kind", ["datasets/d", "packages/m"])
def test_empty_body_is_400(server: RunningServer, client: httpx.Client, project: str, kind: str) -> None:
    rejected(server, lambda: client.post(f"/projects/{project}/{kind}/versions", content=b""),
             400, "the request body is empty")


def test_archive_without_files_is_not_a_dataset_version(
    server: RunningServer, client: httpx.Client, project: str
) -> None:
    empty = zip_bytes({"only/a/folder/": b""})
    rejected(server, lambda: client.post(f"/projects/{project}/datasets/d/versions", content=empty),
             400, "the archive holds no files")


def test_paths_longer_than_the_manifest_allows_are_refused(
    server: RunningServer, client: httpx.Client, project: str
) -> None:
    deep = "/".join(["d" * 200] * 6) + "/f.txt"
    rejected(server, lambda: client.post(f"/projects/{project}/datasets/d/versions",
                                         content=zip_bytes({deep: b"x"})),
             400, "is longer than 1024 characters")


# --------------------------------------------------------------------------- ML package contract

TRAIN_NO_EVAL_SAVE = "class Main:\n    def __init__(self):\n        pass\n    def train(self, d):\n        pass\n"
PACKAGE_PROBLEMS: dict[str, tuple[bytes, str]] = {
    "tar-instead-of-zip": (tar_bytes({"pkg/train.py": TRAIN_OK.encode()}), "an ML package must be a zip file"),
    "no-code": (package_zip(train=None, main=None, extra={"README.md": b"hi"}),
                "invalid ML package: the package has neither train.py (class Main with __init__, train, "
                "evaluate, save) nor main.py (class Main with __init__, predict) at its root"),
    "train-missing-methods": (package_zip(train=TRAIN_NO_EVAL_SAVE, main=None),
                              "invalid ML package: train.py: class Main is missing method(s) 'evaluate', 'save'"),
    "main-missing-predict": (package_zip(train=TRAIN_OK, main="class Main:\n    def __init__(self): pass\n"),
                             "invalid ML package: main.py: class Main is missing method(s) 'predict'"),
    "no-class-main": (package_zip(train="class Trainer:\n    pass\n", main=None),
                      "invalid ML package: train.py: no top-level 'class Main'"),
    "nested-class-main": (package_zip(train="if True:\n" + TRAIN_OK.replace("\n", "\n    "), main=None),
                          "train.py: no top-level 'class Main'"),
    "syntax-error": (package_zip(train="class Main(:\n", main=MAIN_OK), "train.py: syntax error at line 1"),
    "null-byte": (package_zip(train="class Main:\n    x = 1\0\n", main=None), "train.py: syntax error"),
    "parser-overflow": (package_zip(train="x = " + "-" * 100_000 + "1\n", main=None),
                        "train.py: nested too deeply to be read"),
    "not-utf8": (zip_bytes({"pkg/train.py": b"# \xff\xfe\n" + TRAIN_OK.encode()}), "train.py is not UTF-8 text"),
    "code-not-at-root": (zip_bytes({"a/train.py": TRAIN_OK.encode(), "b/main.py": MAIN_OK.encode()}),
                         "the package has neither train.py"),
}


@pytest.mark.parametrize("case", sorted(PACKAGE_PROBLEMS))
def test_package_that_breaks_the_contract_names_what_is_wrong(
    server: RunningServer, client: httpx.Client, project: str, case: str
) -> None:
    data, words = PACKAGE_PROBLEMS[case]
    rejected(server, lambda: client.post(f"/projects/{project}/packages/m/versions", content=data),
             400, words)


# --------------------------------------------------------------------------- names and lookups


@pytest.mark.parametrize("name", ["has space", "-dash-first", "dot-last.", "x" * 65, "semi;colon", "ünï"])
def test_invalid_names_are_400(server: RunningServer, client: httpx.Client, project: str, name: str) -> None:
    rejected(server, lambda: client.post("/projects", json={"name": name}), 400, "invalid project name")
    rejected(server, lambda: client.post(f"/projects/{project}/datasets", json={"name": name}),
             400, "invalid dataset name")
    # Uploads name the dataset or package in the URL; the name is checked before anything else.
    rejected(server, lambda: client.post(f"/projects/{project}/datasets/{name}/versions",
                                         content=zip_bytes(GOOD)), 400, "invalid dataset name")
    rejected(server, lambda: client.post(f"/projects/{project}/packages/{name}/versions",
                                         content=package_zip()), 400, "invalid ML package name")


def test_duplicates_are_409(server: RunningServer, client: httpx.Client) -> None:
    project = new_project(client)
    rejected(server, lambda: client.post("/projects", json={"name": project}), 409,
             f"project '{project}' already exists")
    assert client.post(f"/projects/{project}/datasets", json={"name": "d"}).status_code == 201
    rejected(server, lambda: client.post(f"/projects/{project}/datasets", json={"name": "d"}), 409,
             "dataset 'd' already exists")


@pytest.fixture(scope="module")
def populated(server: RunningServer) -> str:
    """A project holding dataset 'd' (version 1, with folder 'sub') and package 'm' (1.0)."""
    with api(server) as client:
        name = new_project(client, "full")
        made = client.post(f"/projects/{name}/datasets/d/versions",
                           content=zip_bytes({"sub/a.txt": b"a", "b.txt": b"b"}))
        assert made.status_code == 201, made.text
        made = client.post(f"/projects/{name}/packages/m/versions", content=package_zip())
        assert made.status_code == 201, made.text
    return name


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/projects/nope", 404, "project 'nope' not found"),
        ("/projects/nope/datasets", 404, "project 'nope' not found"),
        ("{p}/datasets/ghost", 404, "dataset 'ghost' not found"),
        ("{p}/datasets/ghost/versions", 404, "dataset 'ghost' not found"),
        ("{p}/datasets/d/versions/7", 404, "dataset version 7 not found"),
        ("{p}/datasets/d/versions/7/download", 404, "dataset version 7 not found"),
        ("{p}/datasets/d/versions/1/download?folder=nothere", 400, "folder 'nothere' does not exist"),
        ("{p}/datasets/d/versions/1/download?folder=../sub", 400, "'..' is not allowed"),
        ("{p}/datasets/d/versions/1/download?folder=b.txt", 400, "folder 'b.txt' does not exist"),
        ("{p}/datasets/d/diff?old=1&new=9", 404, "dataset version 9 not found"),
        ("{p}/datasets/d/diff?old=1", 422, "new"),
        ("{p}/datasets/d/diff?old=one&new=1", 422, "old"),
        ("{p}/datasets/d/versions/first", 422, "version"),
        ("{p}/packages/ghost", 404, "ML package 'ghost' not found"),
        ("{p}/packages/ghost/versions", 404, "ML package 'ghost' not found"),
        ("{p}/packages/m/versions/9.0", 404, "version 9.0 not found"),
        ("{p}/packages/m/versions/9.0/download", 404, "version 9.0 not found"),
        ("{p}/packages/m/versions/latest", 400, "invalid version 'latest': expected MAJOR.MINOR"),
    ],
)
def test_unknown_or_malformed_lookups_are_4xx(
    server: RunningServer, client: httpx.Client, populated: str, path: str, status: int, words: str
) -> None:
    url = path.replace("{p}", f"/projects/{populated}")
    rejected(server, lambda: client.get(url), status, words)


@pytest.mark.parametrize("kind", ["datasets/d", "packages/m"])
def test_upload_to_an_unknown_project_is_404(server: RunningServer, client: httpx.Client, kind: str) -> None:
    data = zip_bytes(GOOD) if kind.startswith("datasets") else package_zip()
    rejected(server, lambda: client.post(f"/projects/ghost-project/{kind}/versions", content=data),
             404, "project 'ghost-project' not found")


def test_malformed_json_bodies_are_422(server: RunningServer, client: httpx.Client) -> None:
    rejected(server, lambda: client.post("/projects", content=b"{not json",
                                         headers={"content-type": "application/json"}), 422, "invalid request")
    rejected(server, lambda: client.post("/projects", json={"description": "no name"}), 422, "name")
    rejected(server, lambda: client.post("/projects", json={"name": 5}), 422, "name")


def test_missing_token_on_an_upload_is_401_and_stores_nothing(server: RunningServer, project: str) -> None:
    with api(server, token=None) as anonymous:
        rejected(server, lambda: anonymous.post(f"/projects/{project}/datasets/d/versions",
                                                content=zip_bytes(GOOD)), 401, "missing token")


def test_after_all_that_the_server_logged_no_crash(server: RunningServer) -> None:
    logs = list(server.home.parent.glob("server-*.log"))
    assert logs and all("Traceback" not in log.read_text() for log in logs)

"""Projects, datasets and ML packages over real HTTP against a real server process (SQLite)."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import RunningServer
from support.archives import MAIN_OK, TRAIN_OK, package_zip, tar_bytes, zip_bytes
from support.servers import api, blob_names, leftovers, new_project, shared_server, unique


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with shared_server(tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with api(server) as http:
        yield http


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def manifest(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": p, "size": len(d), "sha256": sha(d)} for p, d in sorted(files.items())]


# --------------------------------------------------------------------------- projects


def test_project_create_list_show_delete(client: httpx.Client) -> None:
    name = unique("proj")
    created = client.post("/projects", json={"name": name, "description": "churn models"})
    assert created.status_code == 201
    assert created.json()["description"] == "churn models" and created.json()["created_by"] == "admin"
    assert name in [p["name"] for p in client.get("/projects").json()["data"]]
    assert client.get(f"/projects/{name}").json()["id"] == created.json()["id"]
    assert client.delete(f"/projects/{name}").status_code == 204
    gone = client.get(f"/projects/{name}")
    assert gone.status_code == 404 and gone.json()["detail"] == f"project '{name}' not found"
    assert name not in [p["name"] for p in client.get("/projects").json()["data"]]


@pytest.mark.parametrize("content", ["dataset", "package"])
def test_a_project_that_is_not_empty_cannot_be_deleted(client: httpx.Client, content: str) -> None:
    project = new_project(client)
    if content == "dataset":
        made = client.post(f"/projects/{project}/datasets", json={"name": "d"})
    else:
        made = client.post(f"/projects/{project}/packages/m/versions", content=package_zip())
    assert made.status_code == 201, made.text
    refused = client.delete(f"/projects/{project}")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"project '{project}' is not empty: it still has datasets, ML packages or jobs"
    )
    assert client.get(f"/projects/{project}").status_code == 200


# --------------------------------------------------------------------------- datasets

V1 = {"train.csv": b"a,b\n1,2\n", "labels.txt": b"cat\ndog\n", "images/cat.txt": b"meow",
      "images/deep/dog.txt": b"woof"}
V2 = {"train.csv": b"a,b\n1,2\n3,4\n", "images/cat.txt": b"meow", "images/deep/dog.txt": b"woof",
      "images/bird.txt": b"tweet"}


@pytest.fixture(scope="module")
def dataset(server: RunningServer) -> dict[str, Any]:
    """A dataset with v1 uploaded as a zip and v2 as a tar.gz; tests only read it."""
    with api(server) as client:
        project = new_project(client, "data")
        base = f"/projects/{project}/datasets/photos"
        v1 = client.post(f"{base}/versions", content=zip_bytes(V1), params={"note": "first cut"})
        v2 = client.post(f"{base}/versions", content=tar_bytes(V2))
    assert v1.status_code == v2.status_code == 201, (v1.text, v2.text)
    return {"base": base, "v1": v1.json(), "v2": v2.json()}


def test_upload_makes_an_immutable_version_with_a_manifest(dataset: dict[str, Any]) -> None:
    v1, v2 = dataset["v1"], dataset["v2"]
    assert (v1["version"], v2["version"]) == (1, 2)
    assert v1["files"] == manifest(V1) and v2["files"] == manifest(V2)
    assert (v1["file_count"], v1["total_size"]) == (4, sum(len(d) for d in V1.values()))
    assert v1["note"] == "first cut" and v1["created_by"] == "admin"


def test_versions_are_listed_and_shown_unchanged(client: httpx.Client, dataset: dict[str, Any]) -> None:
    base = dataset["base"]
    listed = client.get(f"{base}/versions").json()
    assert listed["count"] == 2 and [v["version"] for v in listed["data"]] == [1, 2]
    assert client.get(f"{base}/versions/1").json()["files"] == manifest(V1)
    assert client.get(base).json()["latest_version"] == 2
    # Versions cannot be rewritten or removed: no such routes exist.
    assert client.put(f"{base}/versions/1", content=zip_bytes({"x": b"y"})).status_code == 405
    assert client.delete(f"{base}/versions/1").status_code == 405


def test_download_a_whole_version(client: httpx.Client, dataset: dict[str, Any]) -> None:
    response = client.get(f"{dataset['base']}/versions/1/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert unzip(response.content) == V1
    assert unzip(client.get(f"{dataset['base']}/versions/2/download").content) == V2


def test_download_one_sub_folder(server: RunningServer, client: httpx.Client,
                                 dataset: dict[str, Any]) -> None:
    response = client.get(f"{dataset['base']}/versions/2/download", params={"folder": "images"})
    assert response.status_code == 200
    assert unzip(response.content) == {k: v for k, v in V2.items() if k.startswith("images/")}
    deep = client.get(f"{dataset['base']}/versions/2/download", params={"folder": "images/deep/"})
    assert unzip(deep.content) == {"images/deep/dog.txt": b"woof"}
    # The zip built for a download is removed once sent.
    deadline = time.monotonic() + 5
    while leftovers(server.home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(server.home) == []


def test_diff_between_two_versions(client: httpx.Client, dataset: dict[str, Any]) -> None:
    diff = client.get(f"{dataset['base']}/diff", params={"old": 1, "new": 2}).json()
    assert [e["path"] for e in diff["added"]] == ["images/bird.txt"]
    assert [e["path"] for e in diff["removed"]] == ["labels.txt"]
    assert diff["changed"] == [{
        "path": "train.csv", "old_size": len(V1["train.csv"]), "new_size": len(V2["train.csv"]),
        "old_sha256": sha(V1["train.csv"]), "new_sha256": sha(V2["train.csv"]),
    }]
    assert diff["unchanged"] == 2 and (diff["old"], diff["new"]) == (1, 2)
    backwards = client.get(f"{dataset['base']}/diff", params={"old": 2, "new": 1}).json()
    assert [e["path"] for e in backwards["added"]] == ["labels.txt"]


def test_identical_content_is_stored_once(server: RunningServer, client: httpx.Client) -> None:
    project = new_project(client)
    files = {"a.bin": b"same-content-" + unique("x").encode(), "copy/a.bin": b"same-content-"}
    files["copy/a.bin"] = files["a.bin"]  # two paths, one content
    before = blob_names(server.home)
    first = client.post(f"/projects/{project}/datasets/d/versions", content=zip_bytes(files)).json()
    assert blob_names(server.home) - before == {sha(files["a.bin"])}
    again = client.post(f"/projects/{project}/datasets/d/versions", content=tar_bytes(files)).json()
    assert again["version"] == 2 and again["content_hash"] == first["content_hash"]
    assert blob_names(server.home) - before == {sha(files["a.bin"])}


@pytest.mark.timeout(120)
def test_concurrent_dataset_uploads_get_distinct_versions(server: RunningServer) -> None:
    with api(server) as client:
        project = new_project(client)
    results = upload_together(server, f"/projects/{project}/datasets/d/versions",
                              [zip_bytes({"n.txt": str(i).encode()}) for i in range(16)])
    assert sorted(r["version"] for r in results) == list(range(1, 17))


# --------------------------------------------------------------------------- ML packages


def test_package_upload_makes_major_versions_and_reads_the_layout(server: RunningServer,
                                                                   client: httpx.Client) -> None:
    project = new_project(client)
    base = f"/projects/{project}/packages/churn"
    first_zip = package_zip(requirements="scikit-learn==1.5\n")
    first = client.post(f"{base}/versions", content=first_zip, params={"description": "baseline"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["version"], body["major"], body["minor"], body["status"]) == ("1.0", 1, 0, "uploaded")
    assert body["can_train"] and body["can_serve"] and body["code_root"] == "my-model"
    assert body["requirements_sha256"] == sha(b"scikit-learn==1.5\n")
    assert (body["zip_sha256"], body["zip_size"]) == (sha(first_zip), len(first_zip))
    assert sha(first_zip) in blob_names(server.home)

    serve_only = package_zip(root="", train=None, requirements=None)
    second = client.post(f"{base}/versions", content=serve_only).json()
    assert second["version"] == "2.0" and second["code_root"] == ""
    assert (second["can_train"], second["can_serve"], second["requirements_sha256"]) == (False, True, None)
    train_only = client.post(f"{base}/versions", content=package_zip(main=None)).json()
    assert train_only["version"] == "3.0" and (train_only["can_train"], train_only["can_serve"]) == (True, False)

    assert [v["version"] for v in client.get(f"{base}/versions").json()["data"]] == ["1.0", "2.0", "3.0"]
    assert client.get(f"{base}/versions/2.0").json()["id"] == second["id"]
    assert client.get(base).json()["latest_major"] == 3
    for version, sent in (("1.0", first_zip), ("2.0", serve_only)):
        download = client.get(f"{base}/versions/{version}/download")
        assert download.status_code == 200 and download.content == sent  # byte-identical
        assert download.headers["content-length"] == str(len(sent))

    blobs = blob_names(server.home)
    same_again = client.post(f"{base}/versions", content=first_zip).json()
    assert same_again["version"] == "4.0" and same_again["zip_sha256"] == sha(first_zip)
    assert blob_names(server.home) == blobs  # a new version, the same single blob


def test_validation_reads_the_source_without_importing_it(client: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "imported.marker"
    hostile = (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('module ran')\n"
        + TRAIN_OK.replace(
            "class Main:\n", f"class Main:\n    pathlib.Path({str(marker)!r}).write_text('class ran')\n"
        )
    )
    project = new_project(client)
    base = f"/projects/{project}/packages/sneaky/versions"
    accepted = client.post(base, content=package_zip(train=hostile))
    assert accepted.status_code == 201, accepted.text
    refused = client.post(base, content=package_zip(train=hostile.replace("def save", "def keep"),
                                                    main=MAIN_OK))
    assert refused.status_code == 400
    assert not marker.exists(), "the server imported the uploaded train.py"


@pytest.mark.timeout(120)
def test_concurrent_package_uploads_never_share_a_version(server: RunningServer) -> None:
    with api(server) as client:
        project = new_project(client)
    bodies = [package_zip(extra={"n.txt": str(i).encode()}) for i in range(16)]
    results = upload_together(server, f"/projects/{project}/packages/race/versions", bodies)
    assert sorted(r["major"] for r in results) == list(range(1, 17))
    assert {r["minor"] for r in results} == {0}


def upload_together(server: RunningServer, path: str, bodies: list[bytes]) -> list[dict[str, Any]]:
    """POST every body at once from its own thread and connection; all must succeed."""
    start = threading.Barrier(len(bodies))
    responses: list[httpx.Response | None] = [None] * len(bodies)

    def send(i: int) -> None:
        with api(server, timeout=90) as own:
            start.wait()
            responses[i] = own.post(path, content=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=100)
    failures = [r.text if r is not None else "no response" for r in responses
                if r is None or r.status_code != 201]
    assert failures == []
    return [r.json() for r in responses if r is not None]

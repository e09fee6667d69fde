"""Client methods for the foundation resources: tokens, projects, datasets, ML packages.

Each area is a small namespace on the client (``client.datasets.upload_version(...)``);
results are the TypedDicts of ``modelops.client.records``.
Transfers stream in chunks both ways, so a multi-gigabyte dataset never sits in memory, and a
download only appears at its destination once every byte has arrived.
"""

from __future__ import annotations

import builtins  # the resource classes' own ``list`` methods shadow the type
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from modelops.archives import pack_tar, pack_zip
from modelops.client.base import ApiError, ClientBase
from modelops.client.records import (
    Dataset,
    DatasetDiff,
    DatasetVersion,
    DatasetVersionDetail,
    ModelVersion,
    NewToken,
    Package,
    Project,
    Token,
    WhoAmI,
)

CHUNK = 1024 * 1024
# The server extracts and hashes an upload (or builds an export zip) before it answers,
# which can take far longer than an ordinary request for a large archive.
TRANSFER_TIMEOUT = httpx.Timeout(60.0, read=3600.0)

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes transferred so far, total bytes or None when the size is unknown)."""


def _seg(value: object) -> str:
    """One URL path segment; names are validated by the server, but never let one split a path."""
    return quote(str(value), safe="")


@contextmanager
def _transport_errors(url: str) -> Iterator[None]:
    """Network failures become ApiError(0, ...) so callers handle one error type."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise ApiError(0, f"cannot reach the modelops server at {url}: is it running?") from exc
    except httpx.TimeoutException as exc:
        raise ApiError(0, f"the modelops server at {url} did not answer in time") from exc
    except httpx.TransportError as exc:
        raise ApiError(0, f"the connection to the modelops server at {url} failed: {exc}") from exc


def _file_chunks(path: Path, size: int, progress: ProgressCallback | None) -> Iterator[bytes]:
    """The file in fixed-size chunks; httpx sends each one before asking for the next."""
    done = 0
    if progress:
        progress(0, size)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
            done += len(chunk)
            if progress:
                progress(done, size)


def _local_source(path: Path | str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file() and not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return path


@contextmanager
def _archive_of(path: Path, *, kind: str) -> Iterator[Path]:
    """An existing archive file as is, or a folder packed into a temporary one."""
    if path.is_file():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="modelops-upload-") as scratch:
        if kind == "zip":
            archive = Path(scratch, f"{path.name or 'upload'}.zip")
            pack_zip(path, archive)
        else:
            archive = Path(scratch, f"{path.name or 'upload'}.tar.gz")
            pack_tar(path, archive)
        yield archive


def _suggested_name(response: httpx.Response, fallback: str) -> str:
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    # Only the last path component: a server-suggested name must not choose the folder.
    name = os.path.basename(match.group(1).strip()) if match else ""
    return name if name not in ("", ".", "..") else fallback


class _Resource:
    def __init__(self, client: ClientBase) -> None:
        self.client = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with _transport_errors(self.client.url):
            return self.client.request(method, path, **kwargs)

    def _upload(
        self, path: str, archive: Path, *, params: dict[str, str], content_type: str,
        progress: ProgressCallback | None,
    ) -> Any:
        size = archive.stat().st_size
        # An explicit Content-Length keeps httpx from switching to chunked encoding, so the
        # server can refuse an over-limit upload before reading it.
        headers = {"Content-Length": str(size), "Content-Type": content_type}
        with _transport_errors(self.client.url):
            response = self.client.http.post(
                path, content=_file_chunks(archive, size, progress), params=params,
                headers=headers, timeout=TRANSFER_TIMEOUT,
            )
        return self.client.check(response).json()

    def _download(
        self, path: str, destination: Path | str, *, params: dict[str, str], fallback_name: str,
        progress: ProgressCallback | None,
    ) -> Path:
        # A trailing slash means "into this folder", even one that does not exist yet.
        into_folder = str(destination).endswith(("/", os.sep))
        destination = Path(destination).expanduser()
        with (
            _transport_errors(self.client.url),
            self.client.http.stream("GET", path, params=params, timeout=TRANSFER_TIMEOUT) as response,
        ):
            if not response.is_success:
                response.read()
                self.client.check(response)
            target = (
                destination / _suggested_name(response, fallback_name)
                if into_folder or destination.is_dir() else destination
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            declared = response.headers.get("content-length")
            total = int(declared) if declared and declared.isdigit() else None
            # A unique hidden name next to the target: the rename is atomic on one file system
            # and a failed transfer never leaves a partial file under the real name.
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                with open(tmp, "xb") as sink:
                    if progress:
                        progress(0, total)
                    for chunk in response.iter_bytes(CHUNK):
                        sink.write(chunk)
                        if progress:
                            progress(response.num_bytes_downloaded, total)
                if total is not None and response.num_bytes_downloaded != total:
                    raise ApiError(
                        0, f"download ended after {response.num_bytes_downloaded} of {total} bytes"
                    )
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return target


class TokensApi(_Resource):
    def list(self) -> list[Token]:
        result: list[Token] = self._call("GET", "/tokens")["data"]
        return result

    def create(self, name: str, role: str) -> NewToken:
        """A new token; its ``secret`` is in this answer only."""
        result: NewToken = self._call("POST", "/tokens", json={"name": name, "role": role})
        return result

    def revoke(self, token_id: int) -> Token:
        result: Token = self._call("DELETE", f"/tokens/{_seg(token_id)}")
        return result


class ProjectsApi(_Resource):
    def list(self) -> list[Project]:
        result: list[Project] = self._call("GET", "/projects")["data"]
        return result

    def create(self, name: str, description: str = "") -> Project:
        body = {"name": name, "description": description}
        result: Project = self._call("POST", "/projects", json=body)
        return result

    def get(self, name: str) -> Project:
        result: Project = self._call("GET", f"/projects/{_seg(name)}")
        return result

    def delete(self, name: str) -> None:
        """Delete an empty project (the server refuses one that still holds anything)."""
        self._call("DELETE", f"/projects/{_seg(name)}")


class DatasetsApi(_Resource):
    @staticmethod
    def _base(project: str, name: str | None = None) -> str:
        base = f"/projects/{_seg(project)}/datasets"
        return base if name is None else f"{base}/{_seg(name)}"

    def list(self, project: str) -> list[Dataset]:
        result: list[Dataset] = self._call("GET", self._base(project))["data"]
        return result

    def create(self, project: str, name: str, description: str = "") -> Dataset:
        body = {"name": name, "description": description}
        result: Dataset = self._call("POST", self._base(project), json=body)
        return result

    def get(self, project: str, name: str) -> Dataset:
        result: Dataset = self._call("GET", self._base(project, name))
        return result

    def upload_version(
        self, project: str, name: str, path: Path | str, note: str = "",
        progress: ProgressCallback | None = None,
    ) -> DatasetVersionDetail:
        """Upload a folder (packed to a temporary tar.gz) or a zip/tar file as the next version.

        The dataset is created if it does not exist yet."""
        source = _local_source(path)
        # Fail on a bad token or an unknown project before packing a possibly large folder.
        self._call("GET", f"/projects/{_seg(project)}")
        with _archive_of(source, kind="tar") as archive:
            result: DatasetVersionDetail = self._upload(
                self._base(project, name) + "/versions", archive, params={"note": note},
                content_type="application/octet-stream", progress=progress,
            )
        return result

    def list_versions(self, project: str, name: str) -> builtins.list[DatasetVersion]:
        result: builtins.list[DatasetVersion] = self._call("GET", self._base(project, name) + "/versions")[
            "data"
        ]
        return result

    def get_version(self, project: str, name: str, version: int) -> DatasetVersionDetail:
        path = f"{self._base(project, name)}/versions/{_seg(version)}"
        result: DatasetVersionDetail = self._call("GET", path)
        return result

    def download_version(
        self, project: str, name: str, version: int, destination: Path | str, folder: str = "",
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Save a version (or one sub-folder of it) as a zip; returns the file written.

        ``destination`` is a file path, or a folder (existing, or ending in '/') to save into
        under the server's name."""
        return self._download(
            f"{self._base(project, name)}/versions/{_seg(version)}/download", destination,
            params={"folder": folder} if folder else {}, fallback_name=f"{name}-v{version}.zip",
            progress=progress,
        )

    def diff(self, project: str, name: str, old: int, new: int) -> DatasetDiff:
        result: DatasetDiff = self._call(
            "GET", self._base(project, name) + "/diff", params={"old": old, "new": new}
        )
        return result


class PackagesApi(_Resource):
    @staticmethod
    def _base(project: str, name: str | None = None) -> str:
        base = f"/projects/{_seg(project)}/packages"
        return base if name is None else f"{base}/{_seg(name)}"

    def list(self, project: str) -> list[Package]:
        result: list[Package] = self._call("GET", self._base(project))["data"]
        return result

    def get(self, project: str, name: str) -> Package:
        result: Package = self._call("GET", self._base(project, name))
        return result

    def upload(
        self, project: str, name: str, path: Path | str, description: str = "",
        progress: ProgressCallback | None = None,
    ) -> ModelVersion:
        """Upload a package zip, or a folder zipped on the fly; the server makes version N.0."""
        source = _local_source(path)
        self._call("GET", f"/projects/{_seg(project)}")
        with _archive_of(source, kind="zip") as archive:
            result: ModelVersion = self._upload(
                self._base(project, name) + "/versions", archive,
                params={"description": description}, content_type="application/zip",
                progress=progress,
            )
        return result

    def list_versions(self, project: str, name: str) -> builtins.list[ModelVersion]:
        result: builtins.list[ModelVersion] = self._call("GET", self._base(project, name) + "/versions")[
            "data"
        ]
        return result

    def get_version(self, project: str, name: str, version: str) -> ModelVersion:
        path = f"{self._base(project, name)}/versions/{_seg(version)}"
        result: ModelVersion = self._call("GET", path)
        return result

    def download_version(
        self, project: str, name: str, version: str, destination: Path | str,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Save a version's package zip; ``destination`` is a file path or a folder."""
        return self._download(
            f"{self._base(project, name)}/versions/{_seg(version)}/download", destination,
            params={}, fallback_name=f"{name}-{version}.zip", progress=progress,
        )


class FoundationApi(ClientBase):
    def whoami(self) -> WhoAmI:
        with _transport_errors(self.url):
            result: WhoAmI = self.request("GET", "/whoami")
        return result

    @cached_property
    def tokens(self) -> TokensApi:
        return TokensApi(self)

    @cached_property
    def projects(self) -> ProjectsApi:
        return ProjectsApi(self)

    @cached_property
    def datasets(self) -> DatasetsApi:
        return DatasetsApi(self)

    @cached_property
    def packages(self) -> PackagesApi:
        return PackagesApi(self)

"""Build zip and tar archives in memory, good and hostile, for upload and extraction tests."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Mapping

TRAIN_OK = '''
class Main:
    def __init__(self):
        self.model = None

    def train(self, training_directory):
        pass

    def evaluate(self, evaluation_directory):
        return 1.0

    def save(self):
        pass
'''

MAIN_OK = '''
class Main:
    def __init__(self):
        pass

    def predict(self, input):
        return input
'''


def zip_bytes(files: Mapping[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(files: Mapping[str, bytes], *, mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_with_symlink(link_name: str, link_target: str, *, before: Mapping[str, bytes] | None = None) -> bytes:
    """A zip whose entry ``link_name`` is a Unix symbolic link to ``link_target``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (before or {}).items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo(link_name)
        info.create_system = 3  # Unix, so the mode bits below are honoured by unzip tools
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, link_target)
    return buffer.getvalue()


def tar_with_link(link_name: str, link_target: str, *, hard: bool,
                  before: Mapping[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (before or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(link_name)
        link.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        link.linkname = link_target
        archive.addfile(link)
    return buffer.getvalue()


def tar_with_special(name: str, kind: bytes) -> bytes:
    """A tar holding one device or fifo entry (``tarfile.CHRTYPE``, ``FIFOTYPE``…)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.type = kind
        archive.addfile(info)
    return buffer.getvalue()


def package_zip(*, root: str = "my-model", train: str | None = TRAIN_OK, main: str | None = MAIN_OK,
                requirements: str | None = "scikit-learn\n",
                extra: Mapping[str, bytes] | None = None) -> bytes:
    """An ML package in the AI Center layout: one root folder with train.py and/or main.py."""
    prefix = f"{root}/" if root else ""
    files: dict[str, bytes] = {}
    if train is not None:
        files[f"{prefix}train.py"] = train.encode()
    if main is not None:
        files[f"{prefix}main.py"] = main.encode()
    if requirements is not None:
        files[f"{prefix}requirements.txt"] = requirements.encode()
    for name, data in (extra or {}).items():
        files[f"{prefix}{name}"] = data
    return zip_bytes(files)


def noise(size: int, seed: int = 0) -> bytes:
    """Incompressible bytes, the same on every run, so corruption tests always hit alike."""
    import random

    return random.Random(seed).randbytes(size)

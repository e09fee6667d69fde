"""Safe extraction and packing of zip and tar archives.

Every entry is checked before a byte is written: no absolute paths, no '..', no links that
leave the target, no device files; totals, entry counts and compression ratios are capped so
an archive bomb stops early. Extraction writes into a fresh folder the caller discards on error.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelops.domain.errors import InvalidArchive, PayloadTooLarge

CHUNK = 1024 * 1024
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 20 * 1024**3  # uncompressed
    max_entries: int = 100_000
    max_ratio: float = 200.0  # uncompressed / compressed, per entry and overall
    ratio_floor_bytes: int = 1024 * 1024  # entries smaller than this are never ratio-checked


def detect_format(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, tarfile.TarError):
        pass
    raise InvalidArchive("not a zip or tar archive (gzip, bzip2 and xz tars are accepted)")


def safe_member_path(name: str) -> PurePosixPath:
    """The relative path an entry may be written at, or InvalidArchive saying why not."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:  # tar names that are not UTF-8 arrive as lone surrogates
        # Checked first: every later message quotes the name, and must itself be valid text.
        shown = name.encode("utf-8", "replace").decode()
        raise InvalidArchive(f"entry {shown!r} has a name that is not valid UTF-8") from exc
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise InvalidArchive(f"entry {name!r} has an absolute path")
    parts = [p for p in cleaned.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidArchive(f"entry {name!r} contains '..'")
    if "\0" in cleaned:
        raise InvalidArchive(f"entry {name!r} contains a NUL byte")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _link_stays_inside(member: PurePosixPath, link_target: str, *, relative_to_member: bool) -> bool:
    if link_target.startswith("/"):
        return False
    base = member.parent if relative_to_member else PurePosixPath(".")
    depth = 0
    for part in (base / link_target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in (".", ""):
            depth += 1
    return True


class _Budget:
    def __init__(self, limits: ArchiveLimits, compressed_total: int) -> None:
        self.limits = limits
        self.compressed_total = max(compressed_total, 1)
        self.written = 0
        self.entries = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise InvalidArchive(f"archive has more than {self.limits.max_entries} entries")

    def add(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.max_total_bytes:
            raise PayloadTooLarge(
                f"archive expands to more than {self.limits.max_total_bytes} bytes"
            )
        if (
            self.written > self.limits.ratio_floor_bytes
            and self.written / self.compressed_total > self.limits.max_ratio
        ):
            raise InvalidArchive(
                f"archive expands more than {self.limits.max_ratio:.0f} times its size "
                "(compression bomb?)"
            )


def _copy_limited(source: object, dest: Path, budget: _Budget, declared: int | None, name: str,
                  compressed: int | None) -> None:
    written = 0
    with open(dest, "xb") as sink:
        while chunk := source.read(CHUNK):  # type: ignore[attr-defined]
            written += len(chunk)
            if declared is not None and written > declared:
                raise InvalidArchive(f"entry {name!r} is larger than its header says")
            if (
                compressed is not None
                and written > budget.limits.ratio_floor_bytes
                and written / max(compressed, 1) > budget.limits.max_ratio
            ):
                raise InvalidArchive(
                    f"entry {name!r} expands more than {budget.limits.max_ratio:.0f} times "
                    "(compression bomb?)"
                )
            budget.add(len(chunk))
            sink.write(chunk)


def extract_archive(archive: Path, target: Path, limits: ArchiveLimits | None = None) -> None:
    """Extract ``archive`` (zip or tar) into the empty folder ``target``."""
    limits = limits or ArchiveLimits()
    target.mkdir(parents=True, exist_ok=True)
    kind = detect_format(archive)
    budget = _Budget(limits, archive.stat().st_size)
    try:
        if kind == "zip":
            _extract_zip(archive, target, budget)
        else:
            _extract_tar(archive, target, budget)
    except FileExistsError as exc:
        where = os.path.relpath(exc.filename, target) if exc.filename else "?"
        raise InvalidArchive(
            f"malformed {kind} archive: path {where!r} appears twice "
            "(a duplicate entry, or a file and a folder of the same name)"
        ) from exc
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, zlib.error,
            lzma.LZMAError) as exc:
        # strerror rather than str(): the latter names our scratch path, which is no use to a user.
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidArchive(f"malformed {kind} archive: {detail}") from exc


def _prepare(target: Path, rel: PurePosixPath) -> Path:
    dest = target.joinpath(*rel.parts)
    # Belt and braces: the resolved parent must stay inside the target.
    parent = dest.parent.resolve()
    if parent != target.resolve() and target.resolve() not in parent.parents:
        raise InvalidArchive(f"entry {str(rel)!r} would be written outside the target")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def _extract_zip(archive: Path, target: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > budget.limits.max_entries:
            raise InvalidArchive(f"archive has more than {budget.limits.max_entries} entries")
        declared_total = sum(i.file_size for i in infos)
        if declared_total > budget.limits.max_total_bytes:
            raise PayloadTooLarge(
                f"archive expands to more than {budget.limits.max_total_bytes} bytes"
            )
        for info in infos:
            budget.entry()
            rel = safe_member_path(info.filename)
            if info.flag_bits & 0x1:
                raise InvalidArchive(f"entry {info.filename!r} is encrypted; encrypted archives are not accepted")
            if info.compress_type not in _ZIP_METHODS:
                raise InvalidArchive(
                    f"entry {info.filename!r} uses an unsupported compression method "
                    f"({info.compress_type}); use stored, deflate, bzip2 or lzma"
                )
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                with zf.open(info) as source:  # a link's target is short; never read a huge one
                    link = source.read(4096).decode("utf-8", "replace")
                if not _link_stays_inside(rel, link, relative_to_member=True):
                    raise InvalidArchive(f"link {info.filename!r} points outside the archive")
                raise InvalidArchive(f"entry {info.filename!r} is a symbolic link; links are not accepted")
            if info.is_dir() or str(rel) == ".":
                target.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            # Many writers (Python's own writestr among them) store permission bits without a
            # file type; only a type that is present and not a file or folder is refused.
            kind = stat.S_IFMT(mode)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise InvalidArchive(f"entry {info.filename!r} is not a regular file")
            dest = _prepare(target, rel)
            with zf.open(info) as source:
                _copy_limited(source, dest, budget, info.file_size, info.filename, info.compress_size)


def _extract_tar(archive: Path, target: Path, budget: _Budget) -> None:
    with tarfile.open(archive, mode="r:*") as tf:
        for member in _iter_tar(tf, budget):
            rel = safe_member_path(member.name)
            if member.issym() or member.islnk():
                inside = _link_stays_inside(rel, member.linkname, relative_to_member=member.issym())
                if not inside:
                    raise InvalidArchive(f"link {member.name!r} points outside the archive")
                raise InvalidArchive(f"entry {member.name!r} is a link; links are not accepted")
            if member.isdir() or str(rel) == ".":
                target.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True)
                continue
            if not member.isreg():
                raise InvalidArchive(f"entry {member.name!r} is not a regular file")
            if member.size > budget.limits.max_total_bytes:
                raise PayloadTooLarge(f"entry {member.name!r} is larger than the size limit")
            dest = _prepare(target, rel)
            source = tf.extractfile(member)
            if source is None:
                raise InvalidArchive(f"entry {member.name!r} cannot be read")
            with source:
                _copy_limited(source, dest, budget, member.size, member.name, None)
        # The tar stream ends before the compressor's trailer, whose checksum is only checked at
        # the end of the file: read on, so a corrupt upload is refused rather than stored.
        while chunk := tf.fileobj.read(CHUNK):  # type: ignore[union-attr]
            budget.add(len(chunk))


def _iter_tar(tf: tarfile.TarFile, budget: _Budget) -> Iterator[tarfile.TarInfo]:
    while True:
        member = tf.next()
        if member is None:
            return
        budget.entry()
        yield member


def single_root(folder: Path) -> Path:
    """If a folder holds exactly one sub-folder and nothing else, that sub-folder."""
    entries = [p for p in folder.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def walk_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, absolute path) of every regular file, sorted."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            yield path.relative_to(folder).as_posix(), path


def pack_zip(folder: Path, out: Path, *, arc_prefix: str = "") -> None:
    """Zip a folder's files (sorted, so equal folders give equal listings)."""
    tmp = out.with_name(f".{out.name}.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel, path in walk_files(folder):
            zf.write(path, f"{arc_prefix}{rel}")
    os.replace(tmp, out)


def pack_tar(folder: Path, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.part")
    with tarfile.open(tmp, "w:gz") as tf:
        for rel, path in walk_files(folder):
            tf.add(path, arcname=rel, recursive=False)
    os.replace(tmp, out)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

"""Safe extraction: every hostile archive is refused with a message naming the problem, and
nothing is ever written outside the target folder."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.archives import (
    noise,
    tar_bytes,
    tar_with_link,
    tar_with_special,
    zip_bytes,
    zip_with_symlink,
)

from modelops.archives import (
    ArchiveLimits,
    detect_format,
    extract_archive,
    pack_zip,
    safe_member_path,
    single_root,
    walk_files,
)
from modelops.domain.errors import InvalidArchive, PayloadTooLarge

FILES = {"train.csv": b"a,b\n1,2\n", "images/cat.txt": b"meow", "images/deep/dog.txt": b"woof"}


def write(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def extracted(target: Path) -> dict[str, bytes]:
    return {rel: path.read_bytes() for rel, path in walk_files(target)}


def refuse(tmp_path: Path, data: bytes, *, limits: ArchiveLimits | None = None,
           error: type[Exception] = InvalidArchive) -> str:
    """Extract into ``tmp_path/box/target`` expecting ``error``; nothing may appear beside it."""
    box = tmp_path / "box"
    target = box / "target"
    with pytest.raises(error) as caught:
        extract_archive(write(tmp_path, data), target, limits)
    assert sorted(p.name for p in box.iterdir()) == ["target"], "something escaped the target"
    return str(caught.value)


# --------------------------------------------------------------------------- good archives


def test_zip_written_by_python_without_file_type_bits_extracts(tmp_path: Path) -> None:
    # ZipFile.writestr stores permission bits only; such entries are ordinary files.
    extract_archive(write(tmp_path, zip_bytes(FILES)), tmp_path / "out")
    assert extracted(tmp_path / "out") == FILES


def test_zip_of_a_real_folder_extracts_with_the_same_bytes(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for rel, data in FILES.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    pack_zip(source, tmp_path / "packed.zip")
    extract_archive(tmp_path / "packed.zip", tmp_path / "out")
    assert extracted(tmp_path / "out") == FILES


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_in_every_accepted_compression_extracts(tmp_path: Path, mode: str) -> None:
    archive = write(tmp_path, tar_bytes(FILES, mode=mode))
    assert detect_format(archive) == "tar"
    extract_archive(archive, tmp_path / "out")
    assert extracted(tmp_path / "out") == FILES


def test_single_root_finds_the_one_top_folder(tmp_path: Path) -> None:
    extract_archive(write(tmp_path, zip_bytes({"pkg/train.py": b"", "pkg/sub/x": b""})), tmp_path / "a")
    assert single_root(tmp_path / "a") == tmp_path / "a" / "pkg"
    extract_archive(write(tmp_path, zip_bytes({"train.py": b"", "sub/x": b""})), tmp_path / "b")
    assert single_root(tmp_path / "b") == tmp_path / "b"


# --------------------------------------------------------------------------- malformed


def test_bytes_that_are_no_archive_are_named_as_such(tmp_path: Path) -> None:
    message = refuse(tmp_path, noise(4096))
    assert "not a zip or tar archive" in message


def test_empty_file_is_not_an_archive(tmp_path: Path) -> None:
    assert "not a zip or tar archive" in refuse(tmp_path, b"")


def test_truncated_zip_is_refused(tmp_path: Path) -> None:
    data = zip_bytes({"a.bin": noise(50_000)})
    refuse(tmp_path, data[: len(data) // 2])


def test_zip_with_corrupted_compressed_data_is_refused(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"a.txt": noise(2000) + b"x" * 200_000}))
    for i in range(80, 600):  # inside the first entry's deflate stream
        data[i] ^= 0x5A
    assert "malformed zip archive" in refuse(tmp_path, bytes(data))


def test_tar_gz_with_corrupted_data_is_refused(tmp_path: Path) -> None:
    data = bytearray(tar_bytes({"a.txt": noise(2000) + b"x" * 200_000}))
    for i in range(300, 700):
        data[i] ^= 0x5A
    assert "malformed tar archive" in refuse(tmp_path, bytes(data))


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_tar_whose_compressed_data_was_altered_is_refused(tmp_path: Path, mode: str) -> None:
    # Random content is stored, not coded: a flipped byte is only seen by the trailer's checksum,
    # which sits after the end of the tar stream.
    data = bytearray(tar_bytes({"a.bin": noise(5000)}, mode=mode))
    data[len(data) // 2] ^= 0xFF
    refuse(tmp_path, bytes(data))


def test_bomb_hidden_after_the_end_of_a_tar_is_caught(tmp_path: Path) -> None:
    import gzip

    data = gzip.compress(tar_bytes({"a.txt": b"hi"}, mode="w") + bytes(8 * 1024 * 1024))
    limits = ArchiveLimits(max_total_bytes=10**9, max_ratio=50.0)
    assert "compression bomb" in refuse(tmp_path, data, limits=limits)


def test_tar_names_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as archive:
        info = tarfile.TarInfo("caf\xe9.csv")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    assert "not valid UTF-8" in refuse(tmp_path, buffer.getvalue())


def test_truncated_tar_gz_is_refused(tmp_path: Path) -> None:
    data = tar_bytes({"a.bin": noise(100_000)})
    assert "malformed tar archive" in refuse(tmp_path, data[: len(data) // 2])


def test_zip_with_unknown_compression_method_is_refused(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"a.txt": b"hello"}, compression=zipfile.ZIP_STORED))
    data[8] = 99  # local header's method
    central = data.find(b"PK\x01\x02")
    data[central + 10] = 99  # central directory's method
    assert "unsupported compression method" in refuse(tmp_path, bytes(data))


def test_encrypted_zip_is_refused(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"a.txt": b"hello"}, compression=zipfile.ZIP_STORED))
    data[6] |= 1  # "encrypted" flag, local header and central directory
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    assert "encrypted" in refuse(tmp_path, bytes(data))


def test_duplicate_entry_names_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with pytest.warns(UserWarning), zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"one")
        archive.writestr("a.txt", b"two")
    assert "'a.txt' appears twice" in refuse(tmp_path, buffer.getvalue())


def test_a_file_and_a_folder_of_one_name_are_refused(tmp_path: Path) -> None:
    assert "appears twice" in refuse(tmp_path, zip_bytes({"a": b"file", "a/b": b"nested"}))


# --------------------------------------------------------------------------- paths and links


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../evil.txt", "'..'"),
        ("ok/../../evil.txt", "'..'"),
        ("..\\evil.txt", "'..'"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
    ],
)
def test_safe_member_path_refuses_escapes(name: str, words: str) -> None:
    with pytest.raises(InvalidArchive, match=words):
        safe_member_path(name)


def test_safe_member_path_keeps_ordinary_paths() -> None:
    assert str(safe_member_path("./a//b/c.txt")) == "a/b/c.txt"


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes], ids=["zip", "tar"])
def test_dotdot_entry_after_good_ones_is_refused_and_writes_nothing_outside(
    tmp_path: Path, build: object
) -> None:
    data = build({"good.txt": b"ok", "../evil.txt": b"pwned"})  # type: ignore[operator]
    assert "'..'" in refuse(tmp_path, data)
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes], ids=["zip", "tar"])
def test_absolute_entry_is_refused(tmp_path: Path, build: object) -> None:
    outside = tmp_path / "outside.txt"
    data = build({str(outside): b"pwned"})  # type: ignore[operator]
    assert "absolute path" in refuse(tmp_path, data)
    assert not outside.exists()


def test_tar_symlink_escaping_the_target_is_refused(tmp_path: Path) -> None:
    data = tar_with_link("data/link", "../../../etc/passwd", hard=False, before={"data/a": b"1"})
    assert "points outside" in refuse(tmp_path, data)


def test_tar_absolute_symlink_is_refused(tmp_path: Path) -> None:
    assert "points outside" in refuse(tmp_path, tar_with_link("link", "/etc/passwd", hard=False))


def test_tar_hardlink_escaping_the_target_is_refused(tmp_path: Path) -> None:
    assert "points outside" in refuse(tmp_path, tar_with_link("link", "../secret", hard=True))
    assert "points outside" in refuse(tmp_path, tar_with_link("hl", "/etc/passwd", hard=True))


def test_zip_symlink_escaping_the_target_is_refused(tmp_path: Path) -> None:
    data = zip_with_symlink("data/link", "../../outside", before={"data/a.txt": b"1"})
    assert "points outside" in refuse(tmp_path, data)


@pytest.mark.parametrize(
    "data",
    [
        tar_with_link("link", "a.txt", hard=False, before={"a.txt": b"1"}),
        tar_with_link("link", "a.txt", hard=True, before={"a.txt": b"1"}),
        zip_with_symlink("link", "a.txt", before={"a.txt": b"1"}),
    ],
    ids=["tar-symlink", "tar-hardlink", "zip-symlink"],
)
def test_links_that_stay_inside_are_refused_too(tmp_path: Path, data: bytes) -> None:
    # A dataset is a tree of plain files; a link would make two paths share content.
    assert "links are not accepted" in refuse(tmp_path, data)


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    assert "not a regular file" in refuse(tmp_path, tar_with_special("dev", kind))


# --------------------------------------------------------------------------- bombs

SMALL = ArchiveLimits(max_total_bytes=100_000, max_entries=10, max_ratio=50.0)


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes], ids=["zip", "tar"])
def test_total_size_limit(tmp_path: Path, build: object) -> None:
    data = build({"a.bin": os.urandom(60_000), "b.bin": os.urandom(60_000)})  # type: ignore[operator]
    message = refuse(tmp_path, data, limits=SMALL, error=PayloadTooLarge)
    assert "more than 100000 bytes" in message


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes], ids=["zip", "tar"])
def test_entry_count_limit(tmp_path: Path, build: object) -> None:
    data = build({f"f{i}.txt": b"x" for i in range(11)})  # type: ignore[operator]
    assert "more than 10 entries" in refuse(tmp_path, data, limits=SMALL)


def test_entry_count_at_the_limit_is_fine(tmp_path: Path) -> None:
    extract_archive(write(tmp_path, zip_bytes({f"f{i}.txt": b"x" for i in range(10)})), tmp_path / "o", SMALL)
    assert len(list(walk_files(tmp_path / "o"))) == 10


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes], ids=["zip", "tar.gz"])
def test_compression_ratio_limit(tmp_path: Path, build: object) -> None:
    limits = ArchiveLimits(max_total_bytes=10**9, max_ratio=50.0)
    data = build({"zeros.bin": bytes(8 * 1024 * 1024)})  # type: ignore[operator]
    assert len(data) < 100_000
    assert "compression bomb" in refuse(tmp_path, data, limits=limits)


def test_one_bomb_entry_among_incompressible_ones_is_caught_per_entry(tmp_path: Path) -> None:
    # Overall the archive expands only ~3x, so only the per-entry ratio can catch this.
    limits = ArchiveLimits(max_total_bytes=10**9, max_ratio=50.0)
    data = zip_bytes({"noise.bin": os.urandom(3 * 1024 * 1024), "zeros.bin": bytes(8 * 1024 * 1024)})
    assert "'zeros.bin' expands more than 50 times" in refuse(tmp_path, data, limits=limits)

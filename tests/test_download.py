"""fetch_file and extract against a loopback HTTP server and hand-built archives: retries, checksums, unsafe members."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.data import download
from pipeline.data.download import extract, fetch_file
from pipeline.errors import DataError
from tests.loopback import closed_port_url, serve

BODY = bytes(range(256)) * 40  # 10 KiB, every byte value, so a truncation or reordering changes the digest


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the back-off between attempts short so failing downloads do not slow the suite."""
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.01)


def leftovers(folder: Path) -> list[str]:
    """What a download left in `folder`, beside the lock file each cached file keeps (pipeline/files.py)."""
    return sorted(path.name for path in folder.iterdir() if path.suffix != ".lock") if folder.exists() else []


def test_download_lands_verified_at_dest(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "file.bin"
    with serve({"file.bin": BODY}) as server:
        assert fetch_file(server.url + "file.bin", sha256(BODY), dest) == dest
    assert dest.read_bytes() == BODY
    assert leftovers(dest.parent) == ["file.bin"]


def test_md5_checksums_are_accepted(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"file.bin": BODY}) as server:
        fetch_file(server.url + "file.bin", "md5:" + hashlib.md5(BODY).hexdigest().upper(), dest)
    assert dest.read_bytes() == BODY


def test_next_mirror_is_tried_when_one_lacks_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"good/file.bin": BODY}) as server:
        fetch_file([server.url + "gone/file.bin", server.url + "good/file.bin"], sha256(BODY), dest)
    assert dest.read_bytes() == BODY
    assert [path for path, _ in server.requests] == ["gone/file.bin", "good/file.bin"]


def test_wrong_checksum_leaves_nothing_at_dest(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"file.bin": BODY}) as server, pytest.raises(DataError, match="checksum mismatch") as caught:
        fetch_file(server.url + "file.bin", sha256(b"something else"), dest)
    assert hashlib.sha256(BODY).hexdigest() in str(caught.value)  # the digest actually received
    assert leftovers(tmp_path) == []


def test_truncated_transfer_is_resumed(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"file.bin": BODY}, truncate_first=1) as server:
        fetch_file(server.url + "file.bin", sha256(BODY), dest)
    assert dest.read_bytes() == BODY
    assert server.requests == [("file.bin", None), ("file.bin", f"bytes={len(BODY) // 2}-")]


def test_truncated_transfer_is_restarted_when_the_server_ignores_ranges(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"file.bin": BODY}, truncate_first=1, ranges=False) as server:
        fetch_file(server.url + "file.bin", sha256(BODY), dest)
    assert dest.read_bytes() == BODY
    assert len(server.requests) == 2


def test_persistent_truncation_fails_without_a_partial_file(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"file.bin": BODY}, truncate_first=100) as server, pytest.raises(DataError, match="cut off"):
        fetch_file(server.url + "file.bin", sha256(BODY), dest)
    assert len(server.requests) == download.ATTEMPTS
    assert leftovers(tmp_path) == []


def test_server_errors_are_retried(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with serve({"file.bin": BODY}, fail_first=download.ATTEMPTS - 1) as server:
        fetch_file(server.url + "file.bin", sha256(BODY), dest)
    assert dest.read_bytes() == BODY
    assert len(server.requests) == download.ATTEMPTS


def test_verified_cached_file_is_reused_without_a_request(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(BODY)
    with serve({"file.bin": b"a different file on the server"}) as server:
        fetch_file(server.url + "file.bin", sha256(BODY), dest)
    assert server.requests == []
    assert dest.read_bytes() == BODY


def test_cached_file_with_wrong_checksum_is_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale")
    with serve({"file.bin": BODY}) as server:
        fetch_file(server.url + "file.bin", sha256(BODY), dest)
    assert dest.read_bytes() == BODY
    assert len(server.requests) == 1


def test_unreachable_host_gives_one_line_naming_url_and_dest(tmp_path: Path) -> None:
    url = closed_port_url("data/file.bin")
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(DataError) as caught:
        fetch_file(url, sha256(BODY), dest)
    message = str(caught.value)
    assert "\n" not in message
    assert url in message and str(dest) in message and "by hand" in message
    assert leftovers(dest.parent) == []


def test_html_answer_asks_for_a_download_by_hand(tmp_path: Path) -> None:
    dest = tmp_path / "big.zip"
    with serve({}, html={"big.zip"}) as server, pytest.raises(DataError, match="by hand") as caught:
        fetch_file(server.url + "big.zip", sha256(BODY), dest)
    assert str(dest) in str(caught.value)
    assert not dest.exists()


def test_malformed_checksum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="sha256:<hex>"):
        fetch_file("http://127.0.0.1:9/x", "crc32:1234", tmp_path / "x")


def zip_with(name: str, data: bytes = b"evil", mode: int = 0o644) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        archive = folder / "bundle.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("good/ok.txt", b"fine")
            member = zipfile.ZipInfo(name)
            member.external_attr = mode << 16
            bundle.writestr(member, data)
        return archive

    return build


def tar_with(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        archive = folder / "bundle.tar.gz"
        with tarfile.open(archive, "w:gz") as bundle:
            for member_name, member_kind, data in (("good/ok.txt", tarfile.REGTYPE, b"fine"), (name, kind, b"evil")):
                member = tarfile.TarInfo(member_name)
                member.type, member.linkname = member_kind, link if member_kind != tarfile.REGTYPE else ""
                member.size = len(data) if member_kind == tarfile.REGTYPE else 0
                bundle.addfile(member, io.BytesIO(data) if member_kind == tarfile.REGTYPE else None)
        return archive

    return build


@pytest.mark.parametrize(
    ("build", "member"),
    [
        (zip_with("../evil.txt"), "../evil.txt"),
        (zip_with("/tmp/aegan-evil.txt"), "/tmp/aegan-evil.txt"),
        (zip_with("link", b"../../evil.txt", stat.S_IFLNK | 0o777), "link"),
        (tar_with("../evil.txt"), "../evil.txt"),
        (tar_with("/tmp/aegan-evil.txt"), "/tmp/aegan-evil.txt"),
        (tar_with("link", tarfile.SYMTYPE, "../../evil.txt"), "link"),
        (tar_with("abs-link", tarfile.SYMTYPE, "/etc/passwd"), "abs-link"),
        (tar_with("hard", tarfile.LNKTYPE, "../evil.txt"), "hard"),
    ],
    ids=[
        "zip-dotdot",
        "zip-absolute",
        "zip-symlink",
        "tar-dotdot",
        "tar-absolute",
        "tar-symlink",
        "tar-abs-symlink",
        "tar-hardlink",
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(
    tmp_path: Path, build: Callable[[Path], Path], member: str
) -> None:
    archive = build(tmp_path)
    target = tmp_path / "out" / "raw"
    with pytest.raises(DataError, match="outside") as caught:
        extract(archive, target)
    assert repr(member) in str(caught.value)
    assert leftovers(target.parent) == []  # neither the target nor a staging directory
    assert leftovers(tmp_path) == sorted([archive.name, "out"])
    assert not Path("/tmp/aegan-evil.txt").exists()


@pytest.mark.parametrize("build", [zip_with("data/x.txt", b"payload"), tar_with("data/x.txt")], ids=["zip", "tar.gz"])
def test_safe_archives_are_extracted_whole(tmp_path: Path, build: Callable[[Path], Path]) -> None:
    target = tmp_path / "raw"
    target.mkdir()
    (target / "stale.txt").write_text("from an earlier run")
    extract(build(tmp_path), target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "data/x.txt",
        "good/ok.txt",
    ]
    assert (target / "good" / "ok.txt").read_bytes() == b"fine"


def test_corrupt_archive_is_reported(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    tar_with("data/x.txt")(tmp_path).rename(archive)
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(DataError, match=re.escape("broken.tar.gz")):
        extract(archive, tmp_path / "raw")
    assert leftovers(tmp_path) == ["broken.tar.gz"]

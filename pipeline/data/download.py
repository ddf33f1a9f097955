"""Download files with retries and checksum checks, and unpack archives without letting them write outside their target.

Every failure is a one-line `DataError` that says what went wrong and how to get past it (usually: fetch the file
by hand and put it where the pipeline looks).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

from pipeline.errors import DataError
from pipeline.files import claim

ATTEMPTS = 3  # per mirror
BACKOFF_SECONDS = 0.5  # doubles after each failed attempt
TIMEOUT_SECONDS = 5.0  # socket connect and read timeout: a dead mirror must fail fast
CHUNK_BYTES = 1 << 20
ALGORITHMS = ("md5", "sha256")


class _Transient(Exception):
    """A failure worth retrying (refused or dropped connection, truncated body, server error)."""


class _Permanent(Exception):
    """A failure that retrying the same URL will not fix (unknown host, 404)."""


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Split "md5:<hex>" or "sha256:<hex>" into (algorithm, lower-case hex digest).

    Raises:
        DataError: for any other form.
    """
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ALGORITHMS or not digest:
        raise DataError(f"checksum {checksum!r} is not valid; write it as 'sha256:<hex>' or 'md5:<hex>'")
    return algorithm, digest.strip().lower()


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, algorithm).hexdigest()


def fetch_file(urls: str | Sequence[str], checksum: str, dest: Path) -> Path:
    """Make `dest` hold the verified file, downloading it from the first mirror that answers.

    A file already at `dest` with the right checksum is reused without any request. Downloads go to
    `<dest>.part` and are renamed onto `dest` only once verified, so `dest` never holds a partial or corrupt file.

    Args:
        urls: one URL or mirrors to try in order.
        checksum: "md5:<hex>" or "sha256:<hex>".
        dest: where the file belongs.

    Returns:
        `dest`.

    Raises:
        DataError: when the checksum does not match, or no mirror could deliver the file.
    """
    mirrors = [urls] if isinstance(urls, str) else list(urls)
    algorithm, expected = parse_checksum(checksum)
    with claim(dest, wait=True):  # two datasets may share a cached file: the second waits, then reuses it
        if dest.is_file() and file_digest(dest, algorithm) == expected:
            return dest
        return _fetch_missing(mirrors, algorithm, expected, dest)


def _fetch_missing(mirrors: list[str], algorithm: str, expected: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    failures = []
    try:
        for url in mirrors:
            reason = _download(url, partial)
            if reason:
                failures.append(f"{url} ({reason})")
                continue
            _verify(partial, url, algorithm, expected, dest)
            os.replace(partial, dest)
            return dest
    finally:
        partial.unlink(missing_ok=True)
    stale = f"; the file already there fails its {algorithm} check" if dest.exists() else ""
    raise DataError(f"cannot download {', nor '.join(failures)}; download it by hand and put it at {dest}{stale}")


def _download(url: str, partial: Path) -> str | None:
    """Try one mirror a few times; return None on success, else the last reason it failed."""
    reason = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            _transfer(url, partial)
            return None
        except _Permanent as error:
            return str(error)
        except _Transient as error:
            reason = str(error)
    return reason


def _transfer(url: str, partial: Path) -> None:
    """Fetch `url` into `partial`, resuming with an HTTP Range request when part of it is already there."""
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": "aegan"} | ({"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_SECONDS) as answer:
            resumed = answer.status == 206 and answer.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
            _save(answer, partial, resumed)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # our Range overshot: the partial file is stale, start over
            partial.unlink(missing_ok=True)
        reason = f"HTTP {error.code} {error.reason}"
        raise (_Transient if error.code >= 500 or error.code in (408, 416, 429) else _Permanent)(reason) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, socket.gaierror):
            raise _Permanent(f"unknown host: {error.reason.strerror}") from None
        raise _Transient(str(getattr(error.reason, "strerror", None) or error.reason)) from None
    except (http.client.HTTPException, OSError) as error:
        raise _Transient(str(error) or type(error).__name__) from None


def _save(answer: http.client.HTTPResponse, partial: Path, resumed: bool) -> None:
    expected = answer.length
    received = 0
    with (
        open(partial, "ab" if resumed else "wb") as out,
        tqdm(
            total=expected,
            unit="B",
            unit_scale=True,
            desc=partial.name.removesuffix(".part"),
            leave=False,
            disable=None,
        ) as bar,
    ):
        while chunk := answer.read(CHUNK_BYTES):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if expected is not None and received < expected:
        raise _Transient(f"transfer cut off after {received} of {expected} bytes")


def _verify(partial: Path, url: str, algorithm: str, expected: str, dest: Path) -> None:
    actual = file_digest(partial, algorithm)
    if actual == expected:
        return
    if _looks_like_html(partial):
        raise DataError(
            f"{url} answered with a web page instead of {dest.name} (a quota, login or virus-scan page); "
            f"download it by hand from {url} and put it at {dest}, then rerun"
        )
    raise DataError(
        f"checksum mismatch for {dest.name} from {url}: expected {algorithm}:{expected}, got {algorithm}:{actual}; "
        "the download is corrupt or tampered, delete it and retry, or fetch it by hand"
    )


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as stream:
        start = stream.read(512).lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


def extract(archive: Path, target: Path) -> None:
    """Unpack a zip or tar (optionally gzip/bz2/xz-compressed) archive into `target`, all or nothing.

    Members are checked before anything is written; the archive is unpacked into a temporary directory next to
    `target`, which replaces `target` only when complete.

    Raises:
        DataError: when the archive is unreadable, or a member would land outside `target` (absolute path, `..`,
            a link pointing outside, a device file).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise DataError(f"{archive} is neither a zip nor a tar archive; give a .zip, .tar, .tar.gz or .tgz file")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"cannot unpack {archive} ({error}); if it is corrupt, delete it and fetch it again") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _extract_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            _check_inside(archive, member.filename, member.filename, staging)
            if stat.S_ISLNK(member.external_attr >> 16):
                link = bundle.read(member).decode("utf-8", "replace")
                _check_inside(archive, member.filename, _link_path(member.filename, link), staging)
        bundle.extractall(staging)


def _extract_tar(archive: Path, staging: Path) -> None:
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()
        for member in members:
            _check_inside(archive, member.name, member.name, staging)
            if member.issym():
                _check_inside(archive, member.name, _link_path(member.name, member.linkname), staging)
            elif member.islnk():
                _check_inside(archive, member.name, member.linkname, staging)
            elif not (member.isfile() or member.isdir()):
                raise DataError(f"refusing to unpack {archive}: member {member.name!r} is a device or pipe, not a file")
        # The "data" filter repeats these checks inside tarfile itself, as a second line of defence.
        bundle.extractall(staging, members=members, filter="data")


def _link_path(member: str, link: str) -> str:
    """Where a symbolic link points, relative to the archive root (absolute links stay absolute)."""
    return posixpath.join(posixpath.dirname(member), link)


def _check_inside(archive: Path, member: str, path: str, root: Path) -> None:
    """Refuse `member` when `path` (its own name or its link's target) is absolute or resolves outside `root`."""
    absolute = path.startswith(("/", "\\")) or PureWindowsPath(path).drive
    if absolute or not (root / PurePosixPath(path)).resolve().is_relative_to(root.resolve()):
        raise DataError(
            f"refusing to unpack {archive}: member {member!r} points outside the target ({path}); "
            "the archive is unsafe, get it from a trusted source"
        )

"""Verified, resumable dataset downloads into the official layout (``pathboard data download``)."""
from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from pathboard.core.errors import PathboardError


@dataclass(frozen=True)
class Download:
    """One file of a dataset's public download.

    ``checksum`` is pinned as ``"md5:<hex>"`` or ``"sha256:<hex>"`` (Zenodo publishes md5).
    An archive (.zip, .tar, .tar.gz, .tgz) is extracted into ``extract_to`` under the data root
    (``""``: the data root itself, for archives whose top folder is the official one).
    """

    url: str
    filename: str
    checksum: str
    size: int | None = None
    extract_to: str = ""


CHUNK = 1 << 20


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(item: Download, folder: Path, timeout: float = 60) -> Path:
    """Download ``item`` into ``folder``, resuming a ``.part`` file left by an interrupted transfer,
    and verify its checksum. Returns the verified file."""
    algorithm, _, expected = item.checksum.partition(":")
    if algorithm not in {"md5", "sha256"} or not expected:
        raise PathboardError(f"{item.filename}: checksum must be 'md5:<hex>' or 'sha256:<hex>'")
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / item.filename, folder / (item.filename + ".part")
    if final.is_file() and _digest(final, algorithm) == expected:
        return final
    start = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(item.url, headers={"Range": f"bytes={start}-"} if start else {})
    total = item.size
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            if start and resp.status != 206:  # the server ignored the range: start again
                start = 0
            total = resp.headers.get("Content-Length")
            total = int(total) + start if total is not None else item.size
            with open(part, "ab" if start else "wb") as out, \
                    tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=item.filename,
                         disable=None, leave=False) as bar:
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to fetch: the .part is complete
            pass
        else:
            raise PathboardError(f"{item.filename}: {item.url} answered HTTP {exc.code} {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        have = part.stat().st_size if part.is_file() else 0
        if not have:  # never connected (no network, a wrong host): nothing to resume
            host = urllib.parse.urlsplit(item.url).netloc
            raise PathboardError(f"{item.filename}: cannot reach {host} ({getattr(exc, 'reason', None) or exc}); "
                                 f"check the network or fetch {item.url} by hand into {folder}") from None
        raise PathboardError(f"{item.filename}: download interrupted after {have:,} bytes ({exc}); "
                             "run the same command again to resume") from None
    if total is not None and part.stat().st_size < total:  # the connection closed early
        raise PathboardError(f"{item.filename}: download interrupted after {part.stat().st_size:,} of "
                             f"{total:,} bytes; run the same command again to resume")
    got = _digest(part, algorithm)
    if got != expected:
        part.unlink()
        raise PathboardError(f"{item.filename}: {algorithm} mismatch (expected {expected}, got {got}); "
                             "the corrupt file was removed, run the command again to download it afresh")
    os.replace(part, final)
    return final


def extract(archive: Path, dest: Path) -> None:
    """Unpack a .zip or .tar(.gz) archive into ``dest``, refusing members that would land outside it.

    Tar members go through tarfile's ``"data"`` filter: device nodes, FIFOs and links out of ``dest`` are
    refused, and setuid/setgid/sticky bits, group/other write bits and owners are dropped."""
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                _inside(dest, member, archive)
            zf.extractall(dest)
    elif name.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _inside(dest, member.name, archive)
                if member.issym() or member.islnk():
                    raise PathboardError(f"{archive.name}: refusing link member {member.name}")
                if not (member.isfile() or member.isdir()):
                    raise PathboardError(f"{archive.name}: refusing member {member.name}: not a file or folder "
                                         "(a device node or FIFO)")
            try:
                tf.extractall(dest, filter="data")
            except tarfile.FilterError as exc:
                raise PathboardError(f"{archive.name}: refusing member: {exc}") from None
    else:
        return  # a plain file: already where it belongs


def _inside(dest: Path, member: str, archive: Path) -> None:
    if not (dest / member).resolve().is_relative_to(dest):
        raise PathboardError(f"{archive.name}: refusing member {member!r} outside the data root")


def download_dataset(dataset, root: Path) -> list[Path]:
    """Fetch, verify and unpack every file of ``dataset`` under the data root."""
    if not dataset.downloads:
        steps = dataset.access or (f"see {dataset.url}" if dataset.url else "no public download is known")
        raise PathboardError(f"{dataset.id} has no public direct download: {steps}")
    cache = root / ".downloads"
    done = []
    for item in dataset.downloads:
        path = fetch(item, cache)
        extract(path, root / item.extract_to)
        done.append(path)
    return done

"""Verified, resumable dataset downloads into the official layout (``pathboard data download``)."""
from __future__ import annotations

from dataclasses import dataclass


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

"""Where pathboard keeps its files for the user: the cache (hash memo, embeddings, derived labels) and the
artifacts of a run (``pathboard-artifacts/<run>/<model>/<dataset>/`` beside the results database, in names
safe on every filesystem); and whether the process that left a file behind (a temporary cache entry, a run
record) is still running, and how many CPUs this process may use."""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: the longest file or folder name :func:`safe_name` returns (well under every filesystem's 255)
MAX_NAME = 80


def cache_root() -> Path:
    env = os.environ.get("PATHBOARD_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pathboard"


def write_cached(path: Path, write: Callable[[BinaryIO], object]) -> bool:
    """Write a file the cache derives (a hash memo, labels, near-duplicate groups, a thumbnail, a tile grid) in
    one rename: ``write`` fills a temporary file beside ``path``, which then replaces it, so a reader finds
    the old file or the whole new one. A cache that cannot be written (read-only, full) only costs working
    it out again next time: False, and no temporary file is left."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live pathboard (python) process on this host: False when no such process
    exists, or when /proc shows the PID reused by another program; True when it cannot be told (another
    user's process, no /proc)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"pathboard" in cmdline or b"python" in cmdline or b"pytest" in cmdline


def safe_name(text: str) -> str:
    """``text`` as one file or folder name that every filesystem accepts: characters other than letters,
    digits, ``.``, ``-`` and ``_`` become ``_`` (``folder:/data/my set`` -> ``folder__data_my_set``), and a
    name that had to change, or is too long, ends with a short hash of the original so that two ids never
    share a name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"
    if name == text and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}-{digest}"


_cpu_limit: int | None = None  # ``--threads``, set by :func:`limit_cpus` when a run is planned


def limit_cpus(threads: int | None) -> None:
    """From now on this process computes on at most ``threads`` CPUs (None: every one it may use): the run's
    ``--threads``, which near-duplicate grouping and torch's threads both honour."""
    global _cpu_limit
    _cpu_limit = threads


def usable_cpus() -> int:
    """The CPUs this process may use: its CPU affinity, which a container or a batch scheduler narrows (the
    machine's count where the platform has no affinity), or fewer under :func:`limit_cpus`."""
    cpus = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return min(cpus, _cpu_limit) if _cpu_limit else cpus

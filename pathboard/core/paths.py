"""Where pathboard keeps its files for the user: the cache (hash memo, embeddings, derived labels); and
whether the process that left a file behind (a temporary cache entry, a run record) is still running."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("PATHBOARD_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pathboard"


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

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb

BIN = Path(sys.executable).parent
#: the repository's root (tests/support/helpers.py is two folders below it)
REPO = Path(__file__).resolve().parents[2]


#: how much slower than a quiet machine a test may find this one (2 pytest-xdist workers share 2 cores here);
#: the few tests that check a latency goal allow this factor
SLOWER = float(os.environ.get("PATHBOARD_TEST_SLOWER", "2" if os.environ.get("PYTEST_XDIST_WORKER") else "1"))


def pathboard(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed ``pathboard`` console script the way a user does."""
    return subprocess.run([str(BIN / "pathboard"), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def mirror(src: Path, dst: Path, per_folder: int | None = None) -> Path:
    """A symlink mirror of a dataset folder (so tests can add files without touching shared data); with
    ``per_folder``, only the first files (sorted) of each folder."""
    for path in sorted(src.rglob("*")):
        if per_folder is not None and path.is_file() and sorted(path.parent.iterdir()).index(path) >= per_folder:
            continue
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return dst


def q(db, sql, params=()):
    return duckdb.connect(str(db), read_only=True).execute(sql, list(params)).fetchall()


def once_per_session(tmp_path_factory, name: str, build: Callable[[Path], object]):
    """``build(folder)``, computed once per test session even across pytest-xdist workers: the first worker to
    ask builds it in ``folder`` under a lock, the others wait for it and read its (pickled) result. For the
    expensive runs several test modules read, so that no worker runs one twice."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's, shared by its workers
    done = root / f"shared-{name}.pickle"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.is_file():
            folder = root / f"shared-{name}"
            folder.mkdir(exist_ok=True)
            done.write_bytes(pickle.dumps(build(folder)))
        return pickle.loads(done.read_bytes())

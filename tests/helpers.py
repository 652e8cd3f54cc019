import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def pathboard(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed ``pathboard`` console script the way a user does."""
    return subprocess.run([str(BIN / "pathboard"), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def mirror(src: Path, dst: Path) -> Path:
    """A symlink mirror of a dataset folder (so tests can add files without touching shared data)."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return dst

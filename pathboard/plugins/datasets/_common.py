"""Helpers the built-in dataset plugins share. Not a plugin: it registers nothing."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from pathboard.api import DatasetNotFoundError


class AbsoluteFolder:
    """Mixin of the datasets whose ``folder`` is an absolute path (``folder:``, ``slides-csv:``, ``pairs-csv:``):
    the data root plays no part. (A plain mixin, not a dataclass, so that it resets no field defaults.)"""

    id: str
    folder: str

    def locate(self, root: Path | None = None) -> Path:
        path = Path(self.folder)
        if not path.is_dir():
            raise DatasetNotFoundError(f"{self.id}: folder not found: {path}")
        return path


def require_files(dataset_id: str, base: Path, paths: list[str], what: str) -> None:
    """One line naming the first of ``paths`` (relative to ``base``, or absolute) that is not a file, if any is."""
    missing = [p for p in paths if not (base / p).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{dataset_id}: {len(missing)} of {len(paths)} {what}(s) listed are not files, "
                                   f"e.g. {base / missing[0]} (relative paths resolve against {base})")


def read_table(dataset_id: str, path: Path, required: tuple[str, ...], expected: str = "") -> list[dict[str, str]]:
    """The rows of a CSV label file (UTF-8, a BOM tolerated) as ``{column: value}``, both stripped. One line
    naming the columns it has when any of ``required`` is missing (``expected`` words them; default "a and b")."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        if any(c not in columns for c in required):
            raise DatasetNotFoundError(f"{dataset_id}: {path} has columns {', '.join(columns) or 'none'}; "
                                       f"expected {expected or ' and '.join(required)}")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]


def slide_index(base: Path) -> dict[str, str]:
    """File name -> path relative to ``base`` of every file under it (the first found, sorted walk)."""
    index: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        rel = Path(dirpath).relative_to(base)
        for name in sorted(filenames):
            index.setdefault(name, (rel / name).as_posix())
    return index

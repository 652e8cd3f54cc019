"""Datasets read in their official on-disk layout under a data root (``--data-root``/``PATHBOARD_DATA``)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from pathboard.core.errors import DatasetNotFoundError, PathboardError
from pathboard.core.prompts import PromptSet

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def data_root(cli: str | None) -> Path:
    root = cli or os.environ.get("PATHBOARD_DATA")
    if not root:
        raise PathboardError("no data root: pass --data-root DIR or set PATHBOARD_DATA")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"data root {path} is not a directory")
    return path


@dataclass(frozen=True)
class Manifest:
    """The files of one dataset as found on disk. ``hash`` changes when any file, size or label does."""

    root: Path
    paths: list[str]
    labels: np.ndarray
    hash: str

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class ImageFolderDataset:
    """A labelled patch dataset stored one folder per class: ``<data root>/<folder>/<CLASS>/<image>``.

    ``classes`` lists every class of the full dataset in classifier order. A copy that lacks a
    class evaluates on the classes present, but the classifier keeps all of them as candidates.
    """

    id: str
    folder: str
    classes: list[str]
    prompt_file: str
    title: str = ""
    url: str = ""
    tags: dict = field(default_factory=dict)
    ordinal: bool = False
    level: str = "patch"
    tasks: frozenset[str] = frozenset({"zeroshot"})
    expected_files: int | None = None

    @property
    def layout(self) -> str:
        return f"{self.folder}/<{'|'.join(self.classes)}>/*{{{','.join(IMAGE_EXTENSIONS)}}}"

    def locate(self, root: Path) -> Path:
        path = root / self.folder
        if not path.is_dir():
            raise DatasetNotFoundError(f"{self.id}: folder not found: {path} (expected layout {self.layout})")
        return path

    def manifest(self, root: Path) -> Manifest:
        base = self.locate(root)
        present = [c for c in self.classes if (base / c).is_dir()]
        if not present:
            raise DatasetNotFoundError(
                f"{self.id}: {base} is not in the official layout: expected class folders "
                f"{', '.join(str(base / c) for c in self.classes[:3])}, ..."
            )
        h = hashlib.sha256(f"{self.id}\n{','.join(self.classes)}\n".encode())
        paths, labels = [], []
        for label, cls in enumerate(self.classes):
            if cls not in present:
                continue
            with os.scandir(base / cls) as entries:
                files = sorted((e.name, e.stat().st_size) for e in entries
                               if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
            for name, size in files:
                rel = f"{cls}/{name}"
                paths.append(rel)
                labels.append(label)
                h.update(f"{rel}\t{size}\t{label}\n".encode())
        if not paths:
            raise DatasetNotFoundError(f"{self.id}: no images under {base} (expected layout {self.layout})")
        return Manifest(base, paths, np.asarray(labels, dtype=np.int64), h.hexdigest())

    def prompts(self) -> PromptSet:
        path = Path(self.prompt_file)
        if not path.is_absolute():
            path = Path(str(resources.files("pathboard.plugins.datasets") / "prompts" / self.prompt_file))
        return PromptSet.load(path)

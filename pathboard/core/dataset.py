"""Datasets read in their official on-disk layout under a data root (``--data-root``/``PATHBOARD_DATA``).

A dataset plugin subclasses :class:`Dataset` and says, in :meth:`Dataset.records`, which items the
official layout holds: their paths, labels and splits. Everything else (validation, the manifest
and its hash, image opening, prompts) is shared.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from pathboard.core.download import Download
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
class Record:
    """One item of a dataset. ``path`` is relative to the dataset folder; an item stored inside an
    array file is ``"file.npy#index"``. ``label`` indexes the dataset's classes (-1: unlabelled)."""

    path: str
    label: int = -1
    split: str | None = None
    #: extra facts kept with the item (e.g. a sampling site), as (name, value) pairs; not hashed
    meta: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Annotation:
    """A labelled region of a slide or image: a polygon in level-0 pixel coordinates (x, y)."""

    label: str
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Manifest:
    """The items of one dataset as found on disk, in a deterministic order.

    ``hash`` covers every path, file size, label and split, so it is stable across runs and machines
    and changes when any of them does.
    """

    root: Path
    paths: list[str]
    labels: np.ndarray
    splits: list[str | None]
    hash: str
    meta: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Dataset:
    """A dataset plugin. Subclasses implement :meth:`records` (and :attr:`layout` for messages)."""

    id: str
    folder: str
    classes: list[str] = field(default_factory=list)
    prompt_file: str = ""
    title: str = ""
    url: str = ""
    #: organ, stain and group (a group may be "a,b" for several)
    tags: dict = field(default_factory=dict)
    ordinal: bool = False
    level: str = "patch"
    #: µm per pixel of the images as scanned, for files that carry no resolution metadata (plain JPEGs):
    #: slide-style tasks tile them at a physical resolution from it (Tiling.fallback_mpp); None: unknown
    mpp: float | None = None
    tasks: frozenset[str] = frozenset({"zeroshot"})
    #: the official splits, and the one zero-shot evaluates on (None: every labelled item)
    splits: tuple[str, ...] = ()
    eval_split: str | None = None
    #: another dataset whose items are this one's training split (e.g. NCT-CRC-HE-100K for CRC-VAL-HE-7K)
    train_from: str | None = None
    expected_files: int | None = None
    #: public files `pathboard data download ID` fetches, verified against pinned checksums
    downloads: tuple[Download, ...] = ()
    #: for gated or registration-only data: the exact steps to get it, shown instead
    access: str = ""

    @property
    def groups(self) -> set[str]:
        """Names that select this dataset in ``--datasets``: its groups, organ and level."""
        names = {g.strip() for g in str(self.tags.get("group", "")).split(",") if g.strip()}
        return names | {self.tags.get("organ", ""), self.level} - {""}

    @property
    def layout(self) -> str:
        return f"{self.folder}/..."

    def records(self, base: Path) -> Iterable[Record]:
        raise NotImplementedError

    def locate(self, root: Path) -> Path:
        path = root / self.folder
        if not path.is_dir():
            raise DatasetNotFoundError(f"{self.id}: folder not found: {path} (expected layout {self.layout})")
        return path

    def manifest(self, root: Path) -> Manifest:
        base = self.locate(root)
        records = sorted(self.records(base), key=lambda r: r.path)
        if not records:
            found = sorted(p.name for p in base.iterdir())[:5]
            raise DatasetNotFoundError(f"{self.id}: no items under {base} (expected layout {self.layout}; "
                                       f"found {', '.join(found) or 'nothing'})")
        seen = {r.path for r in records}
        if len(seen) != len(records):
            raise DatasetNotFoundError(f"{self.id}: {len(records) - len(seen)} duplicate item(s) under {base}")
        h = hashlib.sha256(f"{self.id}\n{','.join(self.classes)}\n".encode())
        sizes: dict[str, int] = {}
        for r in records:
            file = r.path.split("#", 1)[0]
            if file not in sizes:
                sizes[file] = os.stat(base / file).st_size
            h.update(f"{r.path}\t{sizes[file]}\t{r.label}\t{r.split or ''}\n".encode())
        return Manifest(base, [r.path for r in records], np.asarray([r.label for r in records], dtype=np.int64),
                        [r.split for r in records], h.hexdigest(), [dict(r.meta) for r in records])

    def open_image(self, base: Path, path: str) -> Image.Image:
        """The RGB image of one item (runs in DataLoader workers)."""
        with Image.open(base / path) as img:
            return img.convert("RGB")

    def prompts(self) -> PromptSet:
        if not self.prompt_file:
            raise PathboardError(f"{self.id} has no prompt set (it is unlabelled)")
        path = Path(self.prompt_file)
        if not path.is_absolute():
            path = Path(str(resources.files("pathboard.plugins.datasets") / "prompts" / self.prompt_file))
        return PromptSet.load(path)


def image_files(folder: Path) -> list[str]:
    """Names of the image files directly in ``folder``, sorted."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))


@dataclass
class ImageFolderDataset(Dataset):
    """A labelled patch dataset stored one folder per class: ``<data root>/<folder>/<CLASS>/<image>``.

    ``classes`` lists every class of the full dataset in classifier order. A copy that lacks a
    class evaluates on the classes present, but the classifier keeps all of them as candidates.
    ``split`` names the official split these files are (e.g. "test").
    """

    split: str | None = None

    @property
    def layout(self) -> str:
        return f"{self.folder}/<{'|'.join(self.classes)}>/*{{{','.join(IMAGE_EXTENSIONS)}}}"

    def records(self, base: Path) -> Iterable[Record]:
        present = [c for c in self.classes if (base / c).is_dir()]
        if not present:
            raise DatasetNotFoundError(
                f"{self.id}: {base} is not in the official layout: expected class folders "
                f"{', '.join(str(base / c) for c in self.classes[:3])}, ...; found "
                f"{', '.join(sorted(p.name for p in base.iterdir())[:5]) or 'nothing'}"
            )
        for label, cls in enumerate(self.classes):
            if cls in present:
                yield from (Record(f"{cls}/{name}", label, self.split) for name in image_files(base / cls))


@dataclass
class SlideDataset(Dataset):
    """A whole-slide-image dataset: :meth:`records` yields one record per slide file (openslide
    formats), :meth:`annotations` its labelled regions. Tiling and slide-level scoring belong to the
    slide tasks; a loader only says what the official download holds."""

    level: str = "wsi"
    tasks: frozenset[str] = frozenset({"zeroshot-wsi"})

    def annotations(self, base: Path, path: str) -> list[Annotation]:
        return []


@dataclass
class DatasetFactory:
    """A parameterised dataset: ``--datasets <id>:<rest>`` builds ``build(rest)``."""

    id: str
    build: Callable[[str], Dataset]
    title: str = ""

"""Datasets read in their official on-disk layout under a data root (``--data-root``/``PATHBOARD_DATA``).

A dataset plugin subclasses :class:`Dataset` and says, in :meth:`Dataset.records`, which items the
official layout holds: their paths, labels and splits. Everything else (validation, the manifest
and its hash, image opening, prompts) is shared.
"""
from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.core.errors import DatasetNotFoundError, PathboardError
from pathboard.core.interfaces.prompts import PromptSet, packaged_prompts
from pathboard.core.media.download import Download
from pathboard.core.media.images import NOT_FOUND, open_rgb

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def data_root(cli: str | None) -> Path:
    root = cli or os.environ.get("PATHBOARD_DATA")
    if not root:
        raise PathboardError("no data root: pass --data-root DIR or set PATHBOARD_DATA")
    path = Path(root).expanduser().absolute()  # stored with the artifacts: the leaderboard runs from elsewhere
    if not path.is_dir():
        raise DatasetNotFoundError(f"data root {path} is not a directory")
    return path


def found(folder: Path, n: int = 5) -> str:
    """The first ``n`` names in ``folder``, sorted and comma-separated; "nothing" when it is empty, missing or
    unreadable (it never raises: it only words an error)."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries)
    except OSError:
        return "nothing"
    return ", ".join(names[:n]) or "nothing"


def layout_error(dataset_id: str, folder: Path, expected: str, problem: str = "") -> DatasetNotFoundError:
    """The one-line error for a dataset folder that does not hold the official layout:
    ``<id>: [<problem>: ]<folder> is not in the official layout: expected <expected>; found <first 5 names>``."""
    lead = f"{problem}: " if problem else ""
    return DatasetNotFoundError(f"{dataset_id}: {lead}{folder} is not in the official layout: expected {expected}; "
                                f"found {found(folder)}")


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

    ``hash`` covers every path, its file's size and modification time, label and split (see
    :meth:`Dataset.manifest`), so it is stable across runs and changes when any of them does.
    ``missing``: the items left out because their file is not there (vanished, or a broken link), each
    with its reason.
    """

    root: Path
    paths: list[str]
    labels: np.ndarray
    splits: list[str | None]
    hash: str
    meta: list[dict] = field(default_factory=list)
    missing: dict = field(default_factory=dict)

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
    #: task id -> why this dataset opts out of a task that would otherwise apply (tasks decide what
    #: applies from the dataset's :attr:`facts`; a dataset says what it has, not which tasks it accepts)
    opt_out: dict = field(default_factory=dict)
    #: the official splits, and the one zero-shot evaluates on (None: every labelled item)
    splits: tuple[str, ...] = ()
    eval_split: str | None = None
    #: another dataset whose items are this one's training split (e.g. NCT-CRC-HE-100K for CRC-VAL-HE-7K)
    train_from: str | None = None
    expected_files: int | None = None
    #: items are augmented copies of a few originals (LC25000): each item's group (Record meta ``"group"``) is
    #: its near-duplicate cluster within its class, found by pathboard from the images
    #: (:func:`pathboard.core.science.grouping.group_manifest`) before its first cell is scored, from the images
    #: the run's first embedding of them decoded (so they are not decoded twice)
    near_duplicates: bool = False
    #: public files `pathboard data download ID` fetches, verified against pinned checksums
    downloads: tuple[Download, ...] = ()
    #: for gated or registration-only data: the exact steps to get it, shown instead
    access: str = ""

    @property
    def facts(self) -> frozenset[str]:
        """What this dataset has, from what it declares (see ``pathboard.core.interfaces.task.FACTS``): patches or
        slides (its level), labels (classes), captions and segmentation truth (the methods it defines)."""
        facts = {"slides" if self.level == "wsi" else "patches"}
        if self.classes:
            facts.add("labels")
        if callable(getattr(self, "captions", None)):
            facts.add("captions")
        if callable(getattr(self, "segmentation_truth", None)):
            facts.add("segmentation")
        if callable(getattr(self, "reports", None)):
            facts.add("reports")
        return frozenset(facts)

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

    def how_to_get(self) -> str:
        """One line: the command that downloads this dataset, or the exact steps for gated data."""
        if self.downloads:
            return f"get it with `pathboard data download {self.id} --data-root <data root>`"
        if self.access:
            return f"to get it: {self.access}"
        return f"see {self.url}" if self.url else ""

    def locate(self, root: Path) -> Path:
        path = root / self.folder
        if not path.is_dir():
            how = self.how_to_get()
            raise DatasetNotFoundError(f"{self.id}: folder not found: {path} (expected layout {self.layout})"
                                       + (f"; {how}" if how else ""))
        return path

    def manifest(self, root: Path, verify: bool = False) -> Manifest:
        """The items :meth:`records` lists, sorted by path, and their hash.

        The hash covers the dataset id and classes, and per item its path, label, split and its file's
        size and modification time (``st_mtime_ns``): an image rewritten in place with the same size gets
        a new hash (a copy that does not keep modification times does too: its embeddings are recomputed).
        ``verify``: also hash every file's content (sha256, read in 1 MiB blocks), which notices a change
        even when size and modification time were restored, at the cost of reading every file.

        An item whose file is missing (vanished, a broken link, or it cannot be stat'ed) is left out and
        named in :attr:`Manifest.missing`, with one warning line on stderr; when every item is missing
        the layout error is raised.
        """
        base = self.locate(root)
        records = sorted(self.records(base), key=lambda r: r.path)
        if not records:
            raise layout_error(self.id, base, self.layout, "no items")
        seen = {r.path for r in records}
        if len(seen) != len(records):
            raise DatasetNotFoundError(f"{self.id}: {len(records) - len(seen)} duplicate item(s) under {base}")
        files: dict[str, str] = {}  # file -> its facts for the hash, or why it is missing
        gone: set[str] = set()
        for r in records:
            file = r.path.split("#", 1)[0]
            if file not in files:
                try:
                    files[file] = _file_facts(base / file, verify)
                except OSError as exc:
                    files[file] = NOT_FOUND if isinstance(exc, FileNotFoundError) else \
                        f"cannot read it: {exc.strerror or type(exc).__name__}"
                    gone.add(file)
        missing = {r.path: files[f] for r in records if (f := r.path.split("#", 1)[0]) in gone}
        kept = [r for r in records if r.path not in missing]
        if missing:
            first = next(iter(missing))
            if not kept:
                raise layout_error(self.id, base, self.layout,
                                   f"no items: all {len(missing)} listed item(s) are missing, e.g. {first}: "
                                   f"{missing[first]}")
            what = f"{len(gone)} missing file(s)" if len(gone) == len(missing) else \
                f"{len(missing)} item(s) of {len(gone)} missing file(s)"
            print(f"warning: {self.id}: left out {what}, e.g. {first}: {missing[first]}", file=sys.stderr)
        h = hashlib.sha256(f"{self.id}\n{','.join(self.classes)}\n".encode())
        for r in kept:
            h.update(f"{r.path}\t{files[r.path.split('#', 1)[0]]}\t{r.label}\t{r.split or ''}\n".encode())
        return Manifest(base, [r.path for r in kept], np.asarray([r.label for r in kept], dtype=np.int64),
                        [r.split for r in kept], h.hexdigest(), [dict(r.meta) for r in kept], missing)

    def open_image(self, base: Path, path: str) -> Image.Image:
        """The RGB image of one item (runs in DataLoader workers), by :func:`pathboard.core.media.images.open_rgb`."""
        return open_rgb(base / path)

    def prompts(self) -> PromptSet:
        if not self.prompt_file:
            raise PathboardError(f"{self.id} has no prompt set (it is unlabelled)")
        path = Path(self.prompt_file)
        if not path.is_absolute():
            path = packaged_prompts() / self.prompt_file
        return PromptSet.load(path)


def _file_facts(file: Path, verify: bool) -> str:
    """What the manifest hash covers of one file: size and st_mtime_ns, and with ``verify`` its sha256."""
    st = os.stat(file)
    facts = f"{st.st_size}\t{st.st_mtime_ns}"
    if verify:
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        facts += f"\t{digest.hexdigest()}"
    return facts


def say_empty_classes(dataset_id: str, classes: list[str]) -> None:
    """One warning naming the class folders that hold no image (a class with nothing to score is said,
    never silently dropped)."""
    if classes:
        print(f"warning: {dataset_id}: empty class folder(s): {', '.join(classes)}", file=sys.stderr)


def image_files(folder: Path) -> list[str]:
    """Names of the image files directly in ``folder``, sorted. A broken symbolic link with an image name is
    listed too, so that the manifest reports it missing instead of leaving it out silently."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS)
                      and (e.is_file() or (e.is_symlink() and not e.is_dir())))


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
            expected = f"class folders {', '.join(str(base / c) for c in self.classes[:3])}, ..."
            raise layout_error(self.id, base, expected)
        empty = []
        for label, cls in enumerate(self.classes):
            if cls in present:
                names = image_files(base / cls)
                if not names:
                    empty.append(cls)
                yield from (Record(f"{cls}/{name}", label, self.split) for name in names)
        say_empty_classes(self.id, empty)


@dataclass
class SlideDataset(Dataset):
    """A whole-slide-image dataset: :meth:`records` yields one record per slide file (openslide
    formats), :meth:`annotations` its labelled regions. Tiling and slide-level scoring belong to the
    slide tasks; a loader only says what the official download holds."""

    level: str = "wsi"

    def annotations(self, base: Path, path: str) -> list[Annotation]:
        return []


@dataclass
class DatasetFactory:
    """A parameterised dataset: ``--datasets <id>:<rest>`` builds ``build(rest)``."""

    id: str
    build: Callable[[str], Dataset]
    title: str = ""

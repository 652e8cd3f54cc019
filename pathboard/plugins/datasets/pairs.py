"""Image-caption datasets for zero-shot cross-modal retrieval (task ``retrieval``).

A :class:`PairsDataset`'s records are its images (unlabelled); each image's captions travel with it in
the record metadata and come back from :meth:`PairsDataset.captions`. An image may have several
captions, and one caption may describe several images (the same text on several rows): the retrieval
task counts a hit when any correct item is retrieved.

``pairs-csv:PATH``
    A CSV with the header ``image_path,caption`` (UTF-8, extra columns ignored), one row per pair; an
    image may appear on several rows. Relative image paths resolve against the CSV's folder. Built by
    ``--datasets pairs-csv:PATH`` (a registered dataset factory) or :func:`pairs_from_spec`.

``arch-books``, ``arch-pubmed``
    ARCH (Gamper & Rajpoot, "Multiple Instance Captioning: Learning Representations from Histopathology
    Textbooks and Articles", CVPR 2021), https://warwick.ac.uk/fac/cross_fac/tia/data/arch, as its two
    archives unpack: ``books_set/{captions.json,images/<uuid>.png}`` and
    ``pubmed_set/{captions.json,images/<uuid>.{jpg,png}}`` (also found under ``ARCH/`` or ``arch/``).
    ``captions.json`` maps a row index to ``{"figure_id", "letter", "caption", "uuid"}`` (books) or
    ``{"caption", "uuid"}`` (PubMed); the image of a row is ``images/<uuid>.*``. The panels of one
    book figure share their caption, so a caption may have several correct images. Rows whose image
    is not in ``images/`` (35 in the public books_set) are left out.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pathboard.api import (
    IMAGE_EXTENSIONS,
    Dataset,
    DatasetFactory,
    DatasetNotFoundError,
    Manifest,
    PromptSet,
    Record,
    hookimpl,
)
from pathboard.plugins.datasets._common import AbsoluteFolder, require_files

CAPTIONS = "captions"  # the Record.meta key holding an image's captions (a JSON list of strings)
IMAGE_COLUMN, CAPTION_COLUMN = "image_path", "caption"
ARCH_URL = "https://warwick.ac.uk/fac/cross_fac/tia/data/arch"


@dataclass
class PairsDataset(Dataset):
    """Images with captions; subclasses yield records via :func:`pair_record`."""

    def captions(self, manifest: Manifest) -> list[list[str]]:
        """Per item of ``manifest`` (manifest order), its captions."""
        return [json.loads(m.get(CAPTIONS, "[]")) for m in manifest.meta]

    def manifest(self, root: Path, verify: bool = False) -> Manifest:
        """The image manifest, its hash also covering every caption (they are this dataset's labels)."""
        m = super().manifest(root, verify=verify)
        h = hashlib.sha256(m.hash.encode())
        for meta in m.meta:
            h.update(meta.get(CAPTIONS, "[]").encode() + b"\n")
        return dataclasses.replace(m, hash=h.hexdigest())

    def prompts(self) -> PromptSet:
        """No classes, so no class prompts: an empty set (retrieval embeds the captions)."""
        return PromptSet(classes={}, templates=["CLASSNAME"], source=f"{self.id} has captions, not classes")


def pair_record(path: str, captions: Iterable[str], meta: Iterable[tuple[str, str]] = ()) -> Record:
    unique = list(dict.fromkeys(c.strip() for c in captions if c and c.strip()))
    return Record(path, -1, None, ((CAPTIONS, json.dumps(unique, ensure_ascii=False)), *meta))


# --- pairs-csv:PATH -------------------------------------------------------------------------------

def read_pairs_csv(path: Path) -> dict[str, list[str]]:
    """image path (as written) -> its captions, in file order."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            if IMAGE_COLUMN not in columns or CAPTION_COLUMN not in columns:
                raise DatasetNotFoundError(f"pairs-csv:{path}: expected the header {IMAGE_COLUMN},{CAPTION_COLUMN}; "
                                           f"found {','.join(columns) or 'an empty file'}")
            pairs: dict[str, list[str]] = {}
            for row in reader:
                image = (row.get(columns[IMAGE_COLUMN]) or "").strip()
                caption = (row.get(columns[CAPTION_COLUMN]) or "").strip()
                if image and caption:
                    pairs.setdefault(image, []).append(caption)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetNotFoundError(f"pairs-csv:{path}: cannot read it: {type(exc).__name__}: {exc}") from None
    return pairs


@dataclass
class PairsCsvDataset(AbsoluteFolder, PairsDataset):
    csv_path: str = ""

    @property
    def layout(self) -> str:
        return f"{self.csv_path} ({IMAGE_COLUMN},{CAPTION_COLUMN}; paths relative to {self.folder})"

    def records(self, base: Path) -> Iterable[Record]:
        pairs = read_pairs_csv(Path(self.csv_path))
        require_files(self.id, base, list(pairs), "image")
        for image, captions in pairs.items():
            yield pair_record(Path(image).as_posix(), captions)


def pairs_csv_dataset(path: str | Path) -> PairsCsvDataset:
    if not str(path).strip():
        raise DatasetNotFoundError("pairs-csv: give a path after 'pairs-csv:'")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise DatasetNotFoundError(f"pairs-csv:{path}: {file} is not a file")
    return PairsCsvDataset(id=f"pairs-csv:{file}", folder=str(file.parent), title=file.name, url=file.as_uri(),
                           tags={"group": "custom"}, csv_path=str(file))


def pairs_from_spec(value: str) -> PairsDataset | None:
    """The dataset ``pairs-csv:PATH`` names, or None when ``value`` is not a ``pairs-csv:`` id. Raises
    :class:`DatasetNotFoundError` (one line) when the file is missing."""
    prefix, sep, rest = value.strip().partition(":")
    if not sep or prefix != "pairs-csv":
        return None
    return pairs_csv_dataset(rest)


# --- ARCH ----------------------------------------------------------------------------------------

@dataclass
class ArchDataset(PairsDataset):
    """One ARCH subset: ``<set>/captions.json`` + ``<set>/images/<uuid>.<ext>``."""

    @property
    def layout(self) -> str:
        return f"{self.folder}/{{captions.json,images/<uuid>.png|jpg}}"

    def locate(self, root: Path) -> Path:
        for candidate in (root / self.folder, root / "ARCH" / self.folder, root / "arch" / self.folder):
            if candidate.is_dir():
                return candidate
        raise DatasetNotFoundError(f"{self.id}: folder not found: {root / self.folder} (expected layout "
                                   f"{self.layout}; unzip {self.folder}.zip from {ARCH_URL} into the data root)")

    def records(self, base: Path) -> Iterable[Record]:
        file = base / "captions.json"
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetNotFoundError(f"{self.id}: cannot read {file} ({type(exc).__name__}: {exc}); expected "
                                       f"layout {self.layout}") from None
        rows = list(raw.values()) if isinstance(raw, dict) else raw
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "uuid" in r and "caption" in r for r in rows):
            raise DatasetNotFoundError(f"{self.id}: {file} is not ARCH's captions.json (a mapping of rows with "
                                       f"'uuid' and 'caption')")
        images: dict[str, str] = {}
        folder = base / "images"
        if folder.is_dir():
            with os.scandir(folder) as entries:
                for e in entries:
                    stem, ext = os.path.splitext(e.name)
                    if e.is_file() and ext.lower() in IMAGE_EXTENSIONS and not e.name.startswith("."):
                        images[stem] = f"images/{e.name}"
        captions: dict[str, list[str]] = {}
        meta: dict[str, tuple] = {}
        for r in rows:
            path = images.get(str(r["uuid"]))
            if path is None:
                continue  # a caption whose image the release lacks
            captions.setdefault(path, []).append(str(r["caption"]))
            meta.setdefault(path, tuple((k, str(r[k])) for k in ("uuid", "figure_id", "letter")
                                        if r.get(k) is not None))
        for path in captions:
            yield pair_record(path, captions[path], meta[path])


ARCH_ACCESS = (f"download books_set.zip and pubmed_set.zip from {ARCH_URL} and unzip them into the data root "
               "(giving <data root>/books_set and <data root>/pubmed_set)")


@hookimpl
def register_datasets(register):
    for id, folder, title in [("arch-books", "books_set", "ARCH (textbooks)"),
                              ("arch-pubmed", "pubmed_set", "ARCH (PubMed)")]:
        register(ArchDataset(id=id, folder=folder, title=title, url=ARCH_URL, access=ARCH_ACCESS,
                             tags={"organ": "multi", "stain": "mixed", "group": "general"}))


@hookimpl
def register_dataset_factories(register):
    register(DatasetFactory("pairs-csv", pairs_csv_dataset, "image-caption pairs, a CSV image_path,caption: "
                                                            "pairs-csv:FILE"))

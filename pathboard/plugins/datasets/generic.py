"""Generic datasets: evaluate private data without writing a plugin.

``folder:PATH``
    Any class-per-folder directory: ``PATH/<CLASS>/**/<image>`` (png, jpg, jpeg, tif, tiff; nested
    sub-folders are read, hidden files and folders are not). Classes are the sorted sub-folder names.

``slides-csv:PATH``
    A CSV of whole-slide images with the header ``slide_path,label[,split]`` (extra columns are kept as
    item metadata). Relative slide paths resolve against the CSV's folder; an empty label makes the slide
    unlabelled. Classes are the sorted unique labels.

Prompts: a ``prompts.json`` in the folder (beside the CSV) is used if present (pathboard's prompt-file
format; ``"templates": "@conch-templates.json"`` resolves next to it or, failing that, to pathboard's
own prompt folder). Otherwise each class is prompted by its name, canonical exactly as written, with
the name's ``_``/``-`` spelled as spaces added as a second synonym, in CONCH's 22 templates.

These ids are parameterised: each prefix is a registered :class:`DatasetFactory`, and
:func:`pathboard.core.engine.selection.dataset_from_spec` builds the dataset an id names. Their dataset folder is
absolute, so they do not depend on the data root.
"""
from __future__ import annotations

import csv
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
    PromptSet,
    Record,
    SlideDataset,
    hookimpl,
    layout_error,
    packaged_prompts,
    say_empty_classes,
)
from pathboard.plugins.datasets._common import AbsoluteFolder, require_files

PROMPT_FILE = "prompts.json"
TAGS = {"group": "custom"}


def name_prompts(classes: list[str], source: str) -> PromptSet:
    """Each class prompted by its own name (plus the name with ``_``/``-`` as spaces), CONCH's templates."""
    templates = json.loads((packaged_prompts() / "conch-templates.json").read_text())["templates"]
    synonyms = {}
    for c in classes:
        spaced = " ".join(c.replace("_", " ").replace("-", " ").split())
        synonyms[c] = [c] + ([spaced] if spaced and spaced != c else [])
    return PromptSet(classes=synonyms, templates=templates, canonical={c: c for c in classes}, source=source)


def _visible(name: str) -> bool:
    return not name.startswith(".")


class _Generic(AbsoluteFolder):
    """Mixin of the generic datasets: an absolute folder, prompts from the folder or the class names.
    (A plain mixin, not a dataclass, so that it does not reset SlideDataset's field defaults.)"""

    classes: list[str]

    def prompts(self) -> PromptSet:
        custom = Path(self.folder) / PROMPT_FILE
        if custom.is_file():
            return PromptSet.load(custom)
        return name_prompts(self.classes, f"class names of {self.id}")


@dataclass
class FolderDataset(_Generic, Dataset):
    """``folder:PATH``: one sub-folder per class."""

    @property
    def layout(self) -> str:
        return f"{self.folder}/<CLASS>/**/*{{{','.join(IMAGE_EXTENSIONS)}}}"

    def records(self, base: Path) -> Iterable[Record]:
        empty = []
        for label, cls in enumerate(self.classes):
            folder = base / cls
            if not folder.is_dir():
                continue
            found = 0
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if _visible(d))
                rel = Path(dirpath).relative_to(base).as_posix()
                for name in sorted(filenames):
                    if _visible(name) and name.lower().endswith(IMAGE_EXTENSIONS):
                        found += 1
                        yield Record(f"{rel}/{name}", label)
            if not found:
                empty.append(cls)
        say_empty_classes(self.id, empty)


def folder_dataset(path: str | Path) -> FolderDataset:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"folder:{path}: {folder} is not a directory")
    with os.scandir(folder) as entries:
        classes = sorted(e.name for e in entries if e.is_dir() and _visible(e.name))
    if not classes:
        raise layout_error(f"folder:{path}", folder, f"one sub-folder per class ({folder}/<CLASS>/*.png ...)")
    return FolderDataset(id=f"folder:{folder}", folder=str(folder), classes=classes, title=folder.name,
                         tags=dict(TAGS), url=folder.as_uri())


SLIDE_COLUMN, LABEL_COLUMN, SPLIT_COLUMN = "slide_path", "label", "split"


def read_slides_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [(c or "").strip().lower() for c in reader.fieldnames or []]
        if SLIDE_COLUMN not in columns or LABEL_COLUMN not in columns:
            raise DatasetNotFoundError(f"slides-csv:{path}: expected the header "
                                       f"{SLIDE_COLUMN},{LABEL_COLUMN}[,{SPLIT_COLUMN}]; "
                                       f"found {','.join(columns) or 'an empty file'}")
        return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader
                if any((v or "").strip() for v in row.values() if isinstance(v, str))]


@dataclass
class SlidesCsvDataset(_Generic, SlideDataset):
    """``slides-csv:PATH``: one row per slide."""

    csv_path: str = ""

    @property
    def layout(self) -> str:
        return f"{self.csv_path} ({SLIDE_COLUMN},{LABEL_COLUMN}[,{SPLIT_COLUMN}]; paths relative to {self.folder})"

    def records(self, base: Path) -> Iterable[Record]:
        rows = read_slides_csv(Path(self.csv_path))
        require_files(self.id, base, [r[SLIDE_COLUMN] for r in rows], "slide")
        for r in rows:
            label = self.classes.index(r[LABEL_COLUMN]) if r[LABEL_COLUMN] in self.classes else -1
            meta = tuple((k, v) for k, v in r.items() if k not in (SLIDE_COLUMN, LABEL_COLUMN, SPLIT_COLUMN) and v)
            yield Record(Path(r[SLIDE_COLUMN]).as_posix(), label, r.get(SPLIT_COLUMN) or None, meta)


def slides_csv_dataset(path: str | Path) -> SlidesCsvDataset:
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise DatasetNotFoundError(f"slides-csv:{path}: {file} is not a file")
    rows = read_slides_csv(file)
    classes = sorted({r[LABEL_COLUMN] for r in rows if r[LABEL_COLUMN]})
    splits = tuple(sorted({r.get(SPLIT_COLUMN, "") for r in rows} - {""}))
    eval_split = "test" if "test" in splits else None
    return SlidesCsvDataset(id=f"slides-csv:{file}", folder=str(file.parent), classes=classes, title=file.name,
                            tags=dict(TAGS), url=file.as_uri(), splits=splits, eval_split=eval_split,
                            csv_path=str(file))


@hookimpl
def register_dataset_factories(register):
    register(DatasetFactory("folder", folder_dataset, "any class-per-folder directory: folder:PATH"))
    register(DatasetFactory("slides-csv", slides_csv_dataset, "a CSV slide_path,label[,split]: slides-csv:FILE"))

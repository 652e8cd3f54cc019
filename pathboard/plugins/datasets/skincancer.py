"""Skin tissue structures and neoplasms (Kriegsmann et al., "Deep learning for the detection of anatomical
tissue structures and neoplasms of the skin on scanned histopathological tissue sections", Frontiers in
Oncology 2022), heiDATA https://doi.org/10.11588/data/7QCR8S.

The heiDATA file ``data.zip`` unpacks to ``data/``: ``data/tiles/<class>/*.jpg`` (16 class folders,
e.g. ``nontumor_skin_dermis_dermis``), ``data/class_dict.json`` and ``data/tiles-v2.csv``, one row per
tile with (among others) ``file`` (``data/tiles/<class>/<tile>.jpg``), ``class`` and ``set``
(Train/Validation/Test, split by patient). Unzip it into ``<data root>/skincancer/`` so that
``skincancer/data/tiles-v2.csv`` exists. Labels come from the ``class`` column, splits from ``set``;
zero-shot evaluates the Test split, as PLIP does.

Groups: each item's ``group`` is the case of its tile: the CSV's ``case`` column where it has one (the
sets are split by patient), else the slide number in the tile's name
(``<class>_ws_<slide>_<tile>.jpg`` gives ``ws_<slide>``). A tile with neither has no group.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from pathboard.api import Dataset, DatasetNotFoundError, Record, hookimpl, layout_error

# the `class` values of tiles-v2.csv: 12 non-tumour structures, then 4 neoplasms
CLASSES = [
    "nontumor_skin_necrosis_necrosis", "nontumor_skin_muscle_skeletal", "nontumor_skin_sweatglands_sweatglands",
    "nontumor_skin_vessel_vessel", "nontumor_skin_elastosis_elastosis", "nontumor_skin_chondraltissue_chondraltissue",
    "nontumor_skin_hairfollicle_hairfollicle", "nontumor_skin_epidermis_epidermis", "nontumor_skin_nerves_nerves",
    "nontumor_skin_subcutis_subcutis", "nontumor_skin_dermis_dermis", "nontumor_skin_sebaceousglands_sebaceousglands",
    "tumor_skin_epithelial_sqcc", "tumor_skin_melanoma_melanoma", "tumor_skin_epithelial_bcc",
    "tumor_skin_naevus_naevus",
]
SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}
CSV = "data/tiles-v2.csv"
URL = "https://heidata.uni-heidelberg.de/dataset.xhtml?persistentId=doi:10.11588/data/7QCR8S"
SLIDE = re.compile(r"_(ws_\d+)_\d+\.\w+$")  # <class>_ws_<slide>_<tile>.jpg


def tile_group(row: dict, name: str) -> tuple[tuple[str, str], ...]:
    """``(("group", <case>),)`` from the row's case column, else the tile name's slide; ``()`` if neither."""
    case = (row.get("case") or "").strip()
    if case:
        return (("group", f"case-{case}"),)
    slide = SLIDE.search(name)
    return (("group", slide.group(1)),) if slide else ()


class SkinCancer(Dataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/{CSV} (file, class, set) + {self.folder}/data/tiles/<class>/*.jpg"

    def records(self, base: Path):
        table = base / CSV
        if not table.is_file():
            raise layout_error(self.id, base, self.layout, f"{table} not found")
        present: dict[str, set[str]] = {}  # folder -> file names, listed once per folder
        index = {c: i for i, c in enumerate(CLASSES)}
        with open(table, newline="") as fh:
            reader = csv.DictReader(fh)
            if not {"file", "class", "set"} <= set(reader.fieldnames or ()):
                raise DatasetNotFoundError(f"{self.id}: {table} has columns {', '.join(reader.fieldnames or ())}; "
                                           "expected file, class, set")
            for row in reader:
                rel = row["file"].strip().lstrip("./")
                rel = rel if rel.startswith("data/") else f"data/{rel}"
                folder, _, name = rel.rpartition("/")
                if folder not in present:
                    try:
                        with os.scandir(base / folder) as entries:
                            present[folder] = {e.name for e in entries if e.is_file()}
                    except OSError:
                        present[folder] = set()
                if name in present[folder]:
                    yield Record(rel, index.get(row["class"].strip(), -1), SPLITS.get(row["set"].strip().lower()),
                                 tile_group(row, name))


@hookimpl
def register_datasets(register):
    register(SkinCancer(
        id="skincancer", folder="skincancer", classes=CLASSES, prompt_file="skincancer.json",
        title="Skin tissue structures and neoplasms (Kriegsmann et al.)", url=URL,
        tags={"organ": "skin", "stain": "H&E", "group": "general"}, splits=("train", "val", "test"),
        eval_split="test",
        access=f"download data.zip from heiDATA ({URL}; no checksum is pinned here) and unzip it into "
               "<data root>/skincancer/ so that skincancer/data/tiles-v2.csv and skincancer/data/tiles/ exist",
    ))

"""TCGA TIL patches (Abousamra et al., Front. Oncol. 2022; Saltz et al., Cell Reports 2018),
https://zenodo.org/records/6604094 (``TCGA-TILs.tar.gz``).

Official layout after ``tar xzf TCGA-TILs.tar.gz``: ``TCGA-TILs/images-tcga-tils/<study>/{train,val,test}/
{til-negative,til-positive}/*.png`` with one lowercase folder per TCGA study (``blca``, ``brca``, ``cesc``,
``luad``, ...), plus ``images-tcga-tils/pancancer/`` (the same patches again, pooled; skipped here so
nothing counts twice) and ``images-tcga-tils-metadata.csv`` (``partition,study,barcode,label,path``).
304,097 patches of 100 x 100 px (50 x 50 um, 20x). A patch is TIL-positive when it holds two or more
tumour-infiltrating lymphocytes. Label, split and study come from the folders.

Groups: a patch's file name holds the TCGA barcode of the slide it was cut from; its ``group`` is the case
(patient) barcode in it, ``TCGA-<TSS>-<participant>`` (the barcode's first 12 characters, e.g.
``TCGA-C5-A1BE``), so a patient's patches stay together. A name without a
barcode has no group.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pathboard.api import Dataset, DatasetNotFoundError, Record, hookimpl, image_files, layout_error

URL = "https://zenodo.org/records/6604094"
CLASSES = ["til-negative", "til-positive"]
SPLITS = ("train", "val", "test")
IMAGES = "images-tcga-tils"
POOLED = "pancancer"
CASE = re.compile(r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}")
ACCESS = (
    "wget -O TCGA-TILs.tar.gz 'https://zenodo.org/records/6604094/files/TCGA-TILs.tar.gz?download=1'; "
    "md5sum TCGA-TILs.tar.gz (expect 42d387c2f8d300dea8bb8a544b43ad3c, as pinned by the dataset authors' "
    "ChampKit); tar xzf TCGA-TILs.tar.gz -C <data root>  (gives <data root>/TCGA-TILs/images-tcga-tils/...). "
    "Extract it with tar: the archive's pancancer/ folder holds links, which `pathboard data download` refuses."
)


@dataclass
class TCGATILs(Dataset):
    #: keep only these studies (folder names, e.g. ("cesc",)); () keeps every study
    studies: tuple[str, ...] = ()

    @property
    def layout(self) -> str:
        study = self.studies[0] if len(self.studies) == 1 else "<study>"
        return f"{self.folder}/{IMAGES}/{study}/{{{','.join(SPLITS)}}}/{{{','.join(CLASSES)}}}/*.png"

    def records(self, base: Path) -> Iterable[Record]:
        images = base / IMAGES
        if not images.is_dir():
            raise layout_error(self.id, base, self.layout, f"{images} not found")
        with os.scandir(images) as entries:
            available = sorted(e.name for e in entries if e.is_dir() and e.name != POOLED)
        wanted = [s for s in available if not self.studies or s in self.studies]
        if not wanted:
            expected = ", ".join(str(images / s) for s in self.studies) or f"{images}/<study>"
            raise DatasetNotFoundError(f"{self.id}: expected study folder {expected} (layout {self.layout}); "
                                       f"found {', '.join(available) or 'no study folders'}")
        for study in wanted:
            for split in SPLITS:
                for label, cls in enumerate(CLASSES):
                    folder = images / study / split / cls
                    if folder.is_dir():
                        for name in image_files(folder):
                            case = CASE.search(name)
                            meta = (("study", study),) + ((("group", case.group(0)),) if case else ())
                            yield Record(f"{IMAGES}/{study}/{split}/{cls}/{name}", label, split, meta)


@hookimpl
def register_datasets(register):
    common = dict(folder="TCGA-TILs", classes=CLASSES, url=URL, splits=SPLITS, eval_split="test", access=ACCESS)
    register(TCGATILs(id="tcga-tils", title="TCGA TIL patches (all studies)", prompt_file="tcga-tils.json",
                      tags={"organ": "multi", "stain": "H&E", "group": "general"}, expected_files=304_097, **common))
    register(TCGATILs(id="tcga-tils-cervix", title="TCGA TIL patches (CESC)", prompt_file="tcga-tils-cervix.json",
                      studies=("cesc",), tags={"organ": "cervix", "stain": "H&E", "group": "cervix"}, **common))

"""Slide-level TCGA projects as the GDC Data Transfer Tool downloads them, https://portal.gdc.cancer.gov.

``gdc-client download -m <manifest> -d DIR`` writes one folder per file: ``DIR/<file_id>/<file_name>``
(``<file_id>`` the GDC file UUID, ``<file_name>`` e.g. ``TCGA-A1-A0SB-01Z-00-DX1.<uuid>.svs``, plus a
``logs/`` folder). pathboard keeps one such download per project under ``TCGA/``:
``TCGA/TCGA-BRCA/<file_id>/TCGA-...svs``, ``TCGA/TCGA-KIRC/...``. The class of a slide is its project
(KIRC -> CCRCC, KIRP -> PRCC, KICH -> CHRCC; LUAD, LUSC), or comes from ``labels.csv`` in the project
folder (``slide_id,label``: ``slide_id`` the file name without ``.svs``, its barcode part
``TCGA-A1-A0SB-01Z-00-DX1`` or the file UUID; ``label`` a class of the dataset, empty for none), which
overrides the project. TCGA-BRCA has no project-level IDC/ILC label, so ``tcga-brca`` needs that file
(e.g. written from the GDC clinical ``primary_diagnosis``: "Infiltrating duct carcinoma, NOS" -> IDC,
"Lobular carcinoma, NOS" -> ILC); slides it does not list stay unlabelled. The subtyping sets use
the diagnostic (FFPE, ``-DX``) slides only; ``tcga-cesc`` takes every slide found.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pathboard import hookimpl
from pathboard.core.dataset import Record, SlideDataset, layout_error
from pathboard.core.errors import DatasetNotFoundError, PathboardError

URL = "https://portal.gdc.cancer.gov"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SLIDE_EXTENSIONS = (".svs", ".tif", ".tiff")
LABELS = "labels.csv"


def access(projects: tuple[str, ...], strategy: str) -> str:
    names = ", ".join(projects)
    folder = projects[0] if len(projects) == 1 else "<project>"
    return (f"GDC Data Portal ({URL}/analysis_page?app=Downloads), Repository: filter Project = {names}, "
            f"Data Type = Slide Image, {strategy}Access = open; add all files to the cart, Cart -> Download "
            "-> Manifest; install the GDC Data Transfer Tool (https://gdc.cancer.gov/access-data/"
            f"gdc-data-transfer-tool); per project run `gdc-client download -m gdc_manifest.<date>.txt -d "
            f"<data root>/TCGA/{folder}` with a manifest holding that project's slides only.")


def _slide_ids(name: str, file_id: str) -> list[str]:
    stem = name.rsplit(".", 1)[0]
    return [stem, stem.split(".", 1)[0], file_id]


@dataclass
class TCGASlides(SlideDataset):
    #: TCGA project -> class name ("" when the project gives no label)
    projects: dict = field(default_factory=dict)
    #: keep only slides whose barcode has this slide type (e.g. "DX"); "" keeps all
    slide_type: str = ""

    @property
    def layout(self) -> str:
        project = next(iter(self.projects)) if len(self.projects) == 1 else "TCGA-<project>"
        labels = f" (+ {project}/{LABELS}: slide_id,label)" if self.classes else ""
        return f"{self.folder}/{project}/<file_id>/TCGA-*.svs{labels}"

    def _labels(self, folder: Path) -> dict[str, int]:
        path = folder / LABELS
        if not path.is_file():
            return {}
        out = {}
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not {"slide_id", "label"} <= set(reader.fieldnames or []):
                raise PathboardError(f"{path}: expected columns slide_id,label "
                                     f"(has {', '.join(reader.fieldnames or [])})")
            for row in reader:
                label = (row["label"] or "").strip()
                if label and label not in self.classes:
                    raise PathboardError(f"{path}: label {label!r} of {row['slide_id']} is not a class of {self.id} "
                                         f"({', '.join(self.classes)})")
                out[row["slide_id"].strip()] = self.classes.index(label) if label else -1
        return out

    def records(self, base: Path) -> Iterable[Record]:
        present = [p for p in self.projects if (base / p).is_dir()]
        if not present:
            raise layout_error(self.id, base, f"project folder(s) {', '.join(str(base / p) for p in self.projects)} "
                                              f"(layout {self.layout})")
        for project in present:
            folder = base / project
            overrides = self._labels(folder)
            default = self.classes.index(self.projects[project]) if self.projects[project] else -1
            if default < 0 and self.classes and not (folder / LABELS).is_file():
                raise DatasetNotFoundError(f"{self.id}: {folder / LABELS} not found: {project} slides have no "
                                           f"project-level {'/'.join(self.classes)} label (columns slide_id,label)")
            with os.scandir(folder) as entries:
                file_ids = sorted(e.name for e in entries if e.is_dir() and UUID.match(e.name))
            for file_id in file_ids:
                for name in sorted(os.listdir(folder / file_id)):
                    if not name.lower().endswith(SLIDE_EXTENSIONS) or not name.startswith("TCGA-"):
                        continue
                    barcode = name.split(".", 1)[0]
                    if self.slide_type and not barcode.rsplit("-", 1)[-1].startswith(self.slide_type):
                        continue
                    label = next((overrides[k] for k in _slide_ids(name, file_id) if k in overrides), default)
                    yield Record(f"{project}/{file_id}/{name}", label, None,
                                 (("project", project), ("case", barcode[:12]), ("file_id", file_id)))


@hookimpl
def register_datasets(register):
    dx = "Experimental Strategy = Diagnostic Slide, "
    sets = [
        ("tcga-cesc", "TCGA-CESC whole-slide images", {"TCGA-CESC": ""}, [], "", 914,
         {"organ": "cervix", "stain": "H&E", "group": "cervix"}, ""),
        ("tcga-brca", "TCGA-BRCA IDC vs ILC", {"TCGA-BRCA": ""}, ["IDC", "ILC"], "DX", None,
         {"organ": "breast", "stain": "H&E", "group": "general"}, dx),
        ("tcga-rcc", "TCGA RCC subtypes (KIRC/KIRP/KICH)",
         {"TCGA-KIRC": "CCRCC", "TCGA-KIRP": "PRCC", "TCGA-KICH": "CHRCC"},
         ["CCRCC", "PRCC", "CHRCC"], "DX", None, {"organ": "kidney", "stain": "H&E", "group": "general"}, dx),
        ("tcga-nsclc", "TCGA NSCLC subtypes (LUAD/LUSC)", {"TCGA-LUAD": "LUAD", "TCGA-LUSC": "LUSC"},
         ["LUAD", "LUSC"], "DX", None, {"organ": "lung", "stain": "H&E", "group": "general"}, dx),
    ]
    for id, title, projects, classes, slide_type, expected, tags, strategy in sets:
        register(TCGASlides(
            id=id, folder="TCGA", title=title, url=URL, projects=projects, classes=classes, slide_type=slide_type,
            prompt_file=f"{id}.json" if classes else "",
            expected_files=expected, tags=tags, access=access(tuple(projects), strategy)))

"""CAMELYON16: sentinel lymph node sections with and without breast cancer metastases (Ehteshami
Bejnordi et al., JAMA 2017; Litjens et al., "1399 H&E-stained sentinel lymph node sections of breast
cancer patients: the CAMELYON dataset", GigaScience 2018), https://camelyon16.grand-challenge.org/Data/.

Official layout, as GigaScience DB (doi:10.5524/100439) and the Grand Challenge Google Drive / Baidu
mirrors ship it::

    CAMELYON16/training/normal/normal_NNN.tif          training slides without metastases
    CAMELYON16/training/tumor/tumor_NNN.tif            training slides with metastases (270 training slides)
    CAMELYON16/training/lesion_annotations.zip         tumor_NNN.xml, ASAP XML lesion polygons
    CAMELYON16/testing/images/test_NNN.tif             130 test slides
    CAMELYON16/testing/reference.csv                   test labels: ``test_NNN,Tumor|Normal,Macro|Micro|None,...``
    CAMELYON16/testing/lesion_annotations.zip          test_NNN.xml for the test slides with metastases

The annotation archives may also be unpacked in place (``lesion_annotations/<slide>.xml``); both forms
are read. ASAP XML: ``<Annotation Name PartOfGroup Type><Coordinates><Coordinate Order X Y/>`` in level-0
pixels. Groups ``_0``, ``_1`` (and ``Tumor``) outline metastases; group ``_2`` outlines normal tissue
*inside* a metastasis outline, to be excluded. They are returned as labels ``tumor`` and ``exclusion``.
For the segmentation task (:meth:`Camelyon16.segmentation_truth`) a grid cell is tumor when its centre
lies inside a tumor outline, ignored inside an exclusion outline, and normal elsewhere; a slide without
annotations is normal throughout, unless it is a tumor slide, whose missing annotation is an error.
(The AWS Open Data mirror ``s3://camelyon-dataset/CAMELYON16/`` uses a different, flat layout.)

Groups: the release names no patients; CAMELYON16 is taken as one slide per patient, so each slide is its
own ``group`` (its file stem, ``tumor_001``): an assumption, not checked against the data.
"""
from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from pathboard.api import (
    Annotation,
    DatasetNotFoundError,
    Record,
    SlideDataset,
    hookimpl,
    layout_error,
    truth_from_annotations,
)

CLASSES = ["normal", "tumor"]
URL = "https://camelyon16.grand-challenge.org/Data/"
TRAIN_DIRS = {"normal": "training/normal", "tumor": "training/tumor"}
TEST_DIR = "testing/images"
REFERENCE = "testing/reference.csv"
#: ASAP PartOfGroup -> annotation label (CAMELYON16 and the CAMELYON17 group names)
GROUPS = {"_0": "tumor", "_1": "tumor", "tumor": "tumor", "metastases": "tumor",
          "_2": "exclusion", "exclusion": "exclusion"}
ACCESS = (
    "open access (CC0), no registration: download the CAMELYON16 folder from GigaScience DB "
    "(https://doi.org/10.5524/100439, ftp://parrot.genomics.cn/gigadb/pub/10.5524/100001_101000/100439/CAMELYON16/) "
    "or from the Google Drive / Baidu links on https://camelyon17.grand-challenge.org/Data/ "
    "into <data root>/CAMELYON16/, "
    "keeping training/{normal,tumor}/, training/lesion_annotations.zip, testing/images/, testing/reference.csv and "
    "testing/lesion_annotations.zip (~700 GB; no per-file checksums are published for this layout)"
)


def parse_asap_xml(data: bytes | str | Path) -> list[Annotation]:
    """Polygons of an ASAP annotation file, in level-0 pixels, in file order."""
    if isinstance(data, Path):
        data = data.read_bytes()
    root = ET.fromstring(data)
    out = []
    for ann in root.iter("Annotation"):
        group = (ann.get("PartOfGroup") or ann.get("Name") or "").strip()
        points = []
        for i, c in enumerate(ann.iter("Coordinate")):
            order = c.get("Order")
            points.append((int(order) if order not in (None, "") else i,
                           float(c.get("X").replace(",", ".")), float(c.get("Y").replace(",", "."))))
        points.sort(key=lambda p: p[0])
        out.append(Annotation(GROUPS.get(group.lower(), group), tuple((x, y) for _, x, y in points)))
    return out


def read_reference(path: Path) -> dict[str, tuple[str, str]]:
    """testing/reference.csv: slide stem (lower case) -> (class, metastasis type). A header row, if any,
    is skipped."""
    out = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.reader(fh):
            if len(row) < 2 or not row[0].strip():
                continue
            name, label = row[0].strip(), row[1].strip().lower()
            if label not in CLASSES:
                if not out:  # a header line such as "image,label,type"
                    continue
                raise DatasetNotFoundError(f"{path}: slide {name} has class {row[1]!r}; expected Normal or Tumor")
            out[Path(name).stem.lower()] = (label, row[2].strip() if len(row) > 2 else "")
    return out


def _tifs(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_file() and e.name.lower().endswith((".tif", ".tiff")))


class Camelyon16(SlideDataset):
    @property
    def layout(self) -> str:
        return (f"{self.folder}/training/{{normal,tumor}}/*.tif, {self.folder}/{TEST_DIR}/*.tif + "
                f"{self.folder}/{REFERENCE}, lesion annotations in {{training,testing}}/lesion_annotations[.zip]")

    def records(self, base: Path):
        present = [d for d in (*TRAIN_DIRS.values(), TEST_DIR) if (base / d).is_dir()]
        if not present:
            raise layout_error(self.id, base, f"{base / TRAIN_DIRS['normal']}, {base / TRAIN_DIRS['tumor']} or "
                                              f"{base / TEST_DIR}")
        for cls, folder in TRAIN_DIRS.items():
            if (base / folder).is_dir():
                yield from (Record(f"{folder}/{name}", CLASSES.index(cls), "train", (("group", Path(name).stem),))
                            for name in _tifs(base / folder))
        if (base / TEST_DIR).is_dir():
            if not (base / REFERENCE).is_file():
                raise DatasetNotFoundError(f"{self.id}: {base / REFERENCE} not found: the test slides in "
                                           f"{base / TEST_DIR} have no labels (expected layout {self.layout})")
            reference = read_reference(base / REFERENCE)
            for name in _tifs(base / TEST_DIR):
                label, kind = reference.get(Path(name).stem.lower(), ("", ""))
                meta = ((("metastasis", kind),) if kind else ()) + (("group", Path(name).stem),)
                yield Record(f"{TEST_DIR}/{name}", CLASSES.index(label) if label else -1, "test", meta)

    def annotations(self, base: Path, path: str) -> list[Annotation]:
        """The lesion polygons of one slide ([] for slides without an annotation file)."""
        part = Path(path).parts[0]  # training | testing
        stem = Path(path).stem
        xml = base / part / "lesion_annotations" / f"{stem}.xml"
        if xml.is_file():
            return parse_asap_xml(xml)
        archive = base / part / "lesion_annotations.zip"
        if archive.is_file():
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if Path(member).name.lower() == f"{stem.lower()}.xml":
                        return parse_asap_xml(zf.read(member))
        return []

    def segmentation_truth(self, base: Path, path: str, grid_shape: tuple[int, int], cell_size0: float):
        """Class index per grid cell (cells of ``cell_size0`` level-0 pixels; -1: excluded)."""
        annotations = self.annotations(base, path)
        if not any(a.label == "tumor" for a in annotations) and self._is_tumor(base, path):
            raise DatasetNotFoundError(f"{self.id}: {path} is a tumor slide but has no lesion annotation in "
                                       f"{Path(path).parts[0]}/lesion_annotations[.zip]")
        return truth_from_annotations(annotations, self.classes, grid_shape, cell_size0, default="normal")

    def _is_tumor(self, base: Path, path: str) -> bool:
        if path.startswith(TRAIN_DIRS["tumor"] + "/"):
            return True
        if path.startswith(TEST_DIR + "/") and (base / REFERENCE).is_file():
            return read_reference(base / REFERENCE).get(Path(path).stem.lower(), ("",))[0] == "tumor"
        return False


@hookimpl
def register_datasets(register):
    register(Camelyon16(
        id="camelyon16", folder="CAMELYON16", classes=CLASSES, prompt_file="camelyon16.json",
        title="CAMELYON16 (lymph node metastases)", url=URL,
        tags={"organ": "lymph node", "stain": "H&E", "group": "general"},
        splits=("train", "test"), eval_split="test",
        expected_files=400, access=ACCESS,
    ))

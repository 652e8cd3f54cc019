"""TissueNet: Detect Lesions in Cervical Biopsies (French Society of Pathology, DrivenData 2020),
https://www.drivendata.org/competitions/67/competition-cervical-biopsy/.

Official training data: ``train_labels.csv`` (``filename,0,1,2,3``: one-hot slide class, the most
severe epithelial lesion: 0 benign, 1 low-grade squamous intraepithelial lesion, 2 high-grade
squamous intraepithelial lesion, 3 invasive squamous carcinoma), ``train_metadata.csv``
(``filename,width,height,resolution,magnification,tif_cksum,tif_size,us_wsi_url,us_tif_url,...``) and
``train_annotations.csv`` (``annotation_id,filename,geometry,annotation_class,us_jpeg_url,...``; a WKT
polygon in level-0 pixels per annotated lesion), plus the slides as pyramidal TIFs in a public S3
bucket (the ``*_tif_url`` columns). DrivenData may append a random suffix to the CSV names
(``train_labels_<suffix>.csv``); both spellings are read. pathboard's layout: ``tissuenet/`` holding the
three CSVs and the slides, directly or under ``train/`` (``<stem>.tif``, or a native ``.svs/.ndpi/.mrxs``).

Two tasks: slide grading (``zeroshot-wsi``, ordinal, quadratic κ) on every slide, and zero-shot lesion
segmentation on the annotated slides (``segmentation_items``): grid cells whose centre lies in a lesion
polygon take its class (a more severe class wins where polygons overlap); cells outside every polygon
are not scored, because the annotators outlined lesions, not every benign region.

Slide file names read ``C<case>_B<block>_S<slide>``: the ``case`` (patient) is kept as item metadata and
is each slide's ``group``, so patient-disjoint splits keep a patient's slides together.

Verified here: the CSV columns and one-hot label encoding as the competition's data page documents
them. Assumed (not checkable offline): that the WKT coordinates are level-0 pixels of the pyramidal TIF
(the competition's sample annotations fall inside the slides' width x height), and the class of an
annotation as an index into benign, LSIL, HSIL, invasive.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pathboard.api import (
    IGNORE,
    Annotation,
    DatasetNotFoundError,
    PathboardError,
    Record,
    SlideDataset,
    hookimpl,
    layout_error,
    rasterize_polygons,
)

URL = "https://www.drivendata.org/competitions/67/competition-cervical-biopsy/"
CLASSES = ["benign", "LSIL", "HSIL", "invasive"]
SLIDE_EXTENSIONS = (".tif", ".tiff", ".svs", ".ndpi", ".mrxs")
META_COLUMNS = ("width", "height", "resolution", "magnification")
ACCESS = (
    f"register at {URL} (log in, accept the competition rules); on its Data download page fetch "
    "train_labels.csv, train_metadata.csv and train_annotations.csv into <data root>/tissuenet/; then "
    "download each slide's pyramidal TIF listed in the us_tif_url (or eu_/asia_tif_url) column of "
    "train_metadata.csv: `aws s3 cp --no-sign-request <tif_url> <data root>/tissuenet/` "
    "(1,015 slides, ~930 GB)."
)


def _csv(base: Path, stem: str) -> Path | None:
    exact = base / f"{stem}.csv"
    if exact.is_file():
        return exact
    suffixed = sorted(base.glob(f"{stem}_*.csv"))
    return suffixed[0] if suffixed else None


def _rows(path: Path, needed: tuple[str, ...]) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetNotFoundError(f"{path} lacks column(s) {', '.join(missing)} "
                                       f"(has {', '.join(reader.fieldnames or [])})")
        return list(reader)


_RING = re.compile(r"\(([^()]*)\)")


def wkt_polygons(text: str) -> list[tuple[tuple[float, float], ...]]:
    """Exterior rings of a WKT POLYGON or MULTIPOLYGON as (x, y) tuples (holes are dropped)."""
    kind = text.strip().split("(", 1)[0].strip().upper()
    if kind.endswith("EMPTY"):
        return []
    if kind not in {"POLYGON", "MULTIPOLYGON"}:
        raise ValueError(f"not a WKT polygon: {text[:40]!r}")
    rings = []
    for m in _RING.finditer(text):
        if text[:m.start()].rstrip().endswith("("):  # the first ring of a polygon is its exterior
            rings.append(tuple((float(x), float(y)) for x, y, *_ in (pt.split() for pt in m.group(1).split(","))))
    return rings


@dataclass
class TissueNet(SlideDataset):
    _annotations: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def layout(self) -> str:
        return f"{self.folder}/{{train_labels.csv,train_metadata.csv,train_annotations.csv,[train/]<slide>.tif}}"

    def _find(self, base: Path, filename: str) -> str | None:
        stem = Path(filename).stem
        for folder in ("", "train/"):
            for name in (filename, *(stem + ext for ext in SLIDE_EXTENSIONS)):
                if (base / folder / name).is_file():
                    return folder + name
        return None

    def records(self, base: Path) -> Iterable[Record]:
        labels_csv = _csv(base, "train_labels")
        if labels_csv is None:
            raise layout_error(self.id, base, self.layout, f"{base / 'train_labels.csv'} not found")
        columns = tuple(str(i) for i in range(len(CLASSES)))
        meta_csv = _csv(base, "train_metadata")
        meta = {r["filename"]: r for r in _rows(meta_csv, ("filename",))} if meta_csv else {}
        for row in _rows(labels_csv, ("filename", *columns)):
            hot = [i for i, c in enumerate(columns) if row[c].strip() not in {"", "0", "0.0"}]
            if len(hot) != 1:
                raise PathboardError(f"{labels_csv}: {row['filename']} has {len(hot)} classes set (expected one of "
                                     f"{', '.join(columns)})")
            path = self._find(base, row["filename"])
            if path is not None:  # a partial copy evaluates on the slides present
                extra = meta.get(row["filename"], {})
                facts = tuple((c, extra[c]) for c in META_COLUMNS if extra.get(c))
                case = Path(row["filename"]).stem.split("_")[0]
                yield Record(path, hot[0], "train", (("case", case), *facts, ("group", case)))

    def annotations(self, base: Path, path: str) -> list[Annotation]:
        """The lesions outlined in train_annotations.csv for this slide (level-0 pixel polygons)."""
        ann_csv = _csv(base, "train_annotations")
        if ann_csv is None:
            return []
        st = ann_csv.stat()
        key = (str(ann_csv), st.st_size, st.st_mtime_ns)
        if key not in self._annotations:
            per_slide: dict[str, list[Annotation]] = {}
            for row in _rows(ann_csv, ("filename", "geometry", "annotation_class")):
                label = CLASSES[int(float(row["annotation_class"]))]
                for ring in wkt_polygons(row["geometry"]):
                    per_slide.setdefault(Path(row["filename"]).stem, []).append(Annotation(label, ring))
            self._annotations = {key: per_slide}
        return list(self._annotations[key].get(Path(path).stem, []))

    def segmentation_items(self, manifest) -> list[str]:
        """The slides with at least one lesion polygon (the others have no segmentation truth)."""
        return [p for p in manifest.paths if self.annotations(manifest.root, p)]

    def segmentation_truth(self, base: Path, path: str, grid_shape: tuple[int, int], cell_size0: float):
        """Per cell, the most severe class of the lesion polygons covering its centre; IGNORE elsewhere."""
        annotations = self.annotations(base, path)
        if not annotations:
            raise DatasetNotFoundError(f"{self.id}: {path} has no lesion annotation in train_annotations.csv")
        truth = np.full(grid_shape, IGNORE, dtype=np.int64)
        for i, name in enumerate(CLASSES):  # in severity order: a more severe lesion wins
            truth[rasterize_polygons([a.polygon for a in annotations if a.label == name], grid_shape, cell_size0)] = i
        return truth


@hookimpl
def register_datasets(register):
    register(TissueNet(id="tissuenet", folder="tissuenet", classes=CLASSES, prompt_file="tissuenet.json",
                       title="TissueNet cervical biopsies", url=URL, ordinal=True, splits=("train",), eval_split=None,
                       expected_files=1015, access=ACCESS,
                       tags={"organ": "cervix", "stain": "H&E", "group": "cervix"}))

"""SICAPv2 prostate Gleason grading patches (Silva-Rodríguez et al., "Going deeper through the Gleason
scoring scale", Computer Methods and Programs in Biomedicine 2020), https://data.mendeley.com/datasets/9xxm58dvs3.

Official layout after unzipping: ``SICAPv2/images/*.jpg`` (512 x 512 px, 10x), ``SICAPv2/masks/``,
``SICAPv2/wsi_labels.xlsx`` and the partitions ``SICAPv2/partition/Test/{Train,Test}.xlsx`` (the
official hold-out: 2,122 test patches from 31 slides) and ``partition/Validation/Val{1..4}/{Train,Test}.xlsx``
(patient-wise cross-validation folds of the training patients). Each partition sheet has the columns
``image_name, NC, G3, G4, G5, G4C``: one-hot Gleason labels (non-cancerous, grades 3-5) plus a
cribriform flag. Items are the rows of partition/Test/{Train,Test}.xlsx; the Gleason grades are
ordinal and zero-shot evaluates the Test split, as CONCH does.

Groups: a patch is named ``<slide>_Block_Region_<n>_<i>_<j>_xini_<x>_yini_<y>.jpg`` (e.g.
``16B0001851_Block_Region_1_0_0_xini_6827_yini_59786.jpg``) and ``wsi_labels.xlsx`` gives each slide's
patient (columns ``slide_id, patient_id, Gleason_primary, Gleason_secondary``; 155 slides of 95 patients).
Each item's ``group`` is its patient (``patient-<patient_id>``), or its slide id when the sheet is absent
or does not list the slide; a name without ``_Block_`` has no group.
"""
from __future__ import annotations

import os
from pathlib import Path

from pathboard.api import Dataset, DatasetNotFoundError, Record, hookimpl, layout_error

CLASSES = ["NC", "G3", "G4", "G5"]
URL = "https://data.mendeley.com/datasets/9xxm58dvs3"
PARTITIONS = {"train": "partition/Test/Train.xlsx", "test": "partition/Test/Test.xlsx"}
WSI_LABELS = "wsi_labels.xlsx"
SLIDE_END = "_Block_"  # a patch name is <slide>_Block_...


def read_sheet(path: Path) -> list[dict]:
    """The rows of the first worksheet as dicts keyed by the header row."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        return [dict(zip(header, row)) for row in rows if any(v is not None for v in row)]
    finally:
        workbook.close()


def patients(base: Path) -> dict[str, str]:
    """Slide id -> ``patient-<patient_id>`` from wsi_labels.xlsx ({} when it is absent or lacks the columns)."""
    sheet = base / WSI_LABELS
    if not sheet.is_file():
        return {}
    out = {}
    for row in read_sheet(sheet):
        slide, patient = row.get("slide_id"), row.get("patient_id")
        if slide is not None and patient is not None:
            patient = int(patient) if isinstance(patient, float) and patient.is_integer() else patient
            out[str(slide).strip()] = f"patient-{str(patient).strip()}"
    return out


def patch_group(name: str, slide_patients: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """``(("group", <patient or slide>),)`` of a patch name, or ``()`` when the name holds no slide id."""
    if SLIDE_END not in name:
        return ()
    slide = name.split(SLIDE_END, 1)[0]
    return (("group", slide_patients.get(slide, slide)),)


def one_hot_label(row: dict) -> int:
    """Index of the single class column equal to 1 (-1 when the row is not one-hot)."""
    hot = [i for i, c in enumerate(CLASSES) if row.get(c) is not None and float(row[c]) == 1]
    return hot[0] if len(hot) == 1 else -1


class SICAPv2(Dataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/images/*.jpg + {self.folder}/{PARTITIONS['test']} (image_name, {', '.join(CLASSES)})"

    def records(self, base: Path):
        images = base / "images"
        sheets = {split: base / rel for split, rel in PARTITIONS.items()}
        if not images.is_dir() or not sheets["test"].is_file():
            missing = images if not images.is_dir() else sheets["test"]
            raise layout_error(self.id, base, self.layout, f"{missing} not found")
        with os.scandir(images) as entries:
            present = {e.name for e in entries if e.is_file()}
        slide_patients = patients(base)
        folds = {}  # training image -> the cross-validation fold that holds it out
        for k in range(1, 5):
            sheet = base / f"partition/Validation/Val{k}/Test.xlsx"
            if sheet.is_file():
                folds.update({str(r.get("image_name")).strip(): str(k) for r in read_sheet(sheet)})
        for split, sheet in sheets.items():
            if not sheet.is_file():
                continue
            rows = read_sheet(sheet)
            if rows and ("image_name" not in rows[0] or any(c not in rows[0] for c in CLASSES)):
                raise DatasetNotFoundError(f"{self.id}: {sheet} has columns {', '.join(rows[0])}; expected "
                                           f"image_name, {', '.join(CLASSES)}")
            for row in rows:
                name = str(row["image_name"]).strip()
                if name in present:
                    meta = (("cv_fold", folds[name]),) if split == "train" and name in folds else ()
                    yield Record(f"images/{name}", one_hot_label(row), split, meta + patch_group(name, slide_patients))


@hookimpl
def register_datasets(register):
    register(SICAPv2(
        id="sicapv2", folder="SICAPv2", classes=CLASSES, prompt_file="sicapv2.json",
        title="SICAPv2 (Gleason grading)", url=URL, tags={"organ": "prostate", "stain": "H&E", "group": "general"},
        ordinal=True, splits=("train", "test"), eval_split="test",
        access=f"download the dataset archive from Mendeley Data ({URL}, 'Download All'; no checksum is "
               "published) and unzip it under the data root so that SICAPv2/images/ and "
               "SICAPv2/partition/Test/Test.xlsx exist",
    ))

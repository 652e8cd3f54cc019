"""BRACS, BReAst Carcinoma Subtyping (Brancati et al., Database 2022), https://www.bracs.icar.cnr.it/.

Official layout of the RoI set: ``BRACS_RoI/latest_version/{train,val,test}/<class>/*.png`` with the
seven classes ``0_N, 1_PB, 2_UDH, 3_FEA, 4_ADH, 5_DCIS, 6_IC`` (normal, pathological benign, usual
ductal hyperplasia, flat epithelial atypia, atypical ductal hyperplasia, ductal carcinoma in situ,
invasive carcinoma); RoI file names such as ``BRACS_010_PB_32.png`` (RoI 32 of slide BRACS_010).
4,539 RoIs: 3,657 train, 312 val, 570 test (split by patient). Zero-shot evaluates test, as CONCH does.

Groups: each RoI's ``group`` is the slide in its name (``BRACS_010``); the names carry no patient (547
slides of 189 patients), so slides of one patient stay separate groups, though the official splits keep a
patient's slides in one split. A name without a slide has no group.
"""
from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from pathboard.api import Dataset, Record, hookimpl, image_files, layout_error, open_rgb

CLASSES = ["0_N", "1_PB", "2_UDH", "3_FEA", "4_ADH", "5_DCIS", "6_IC"]
SPLITS = ("train", "val", "test")
URL = "https://www.bracs.icar.cnr.it/"
SLIDE = re.compile(r"^(BRACS_\d+)_")  # BRACS_<slide>_<class>_<roi>.png


class BRACS(Dataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/{{{','.join(SPLITS)}}}/{{{','.join(CLASSES)}}}/*.png"

    def records(self, base: Path):
        if not any((base / s).is_dir() for s in SPLITS):
            raise layout_error(self.id, base, ", ".join(str(base / s) for s in SPLITS))
        for split in SPLITS:
            for label, cls in enumerate(CLASSES):
                if (base / split / cls).is_dir():
                    for name in image_files(base / split / cls):
                        slide = SLIDE.match(name)
                        yield Record(f"{split}/{cls}/{name}", label, split,
                                     (("group", slide.group(1)),) if slide else ())

    def open_image(self, base: Path, path: str) -> Image.Image:
        # RoIs are up to tens of thousands of pixels a side at 40x: beyond pathboard's default pixel cap and
        # PIL's decompression-bomb limit, so no cap by default (PATHBOARD_MAX_PIXELS still sets one)
        return open_rgb(base / path, max_pixels=0)


@hookimpl
def register_datasets(register):
    register(BRACS(
        id="bracs", folder="BRACS_RoI/latest_version", classes=CLASSES, prompt_file="bracs.json",
        title="BRACS RoIs (7 classes)", url=URL, tags={"organ": "breast", "stain": "H&E", "group": "general"},
        splits=SPLITS, eval_split="test", expected_files=3657 + 312 + 570,
        access=f"register on {URL} (Download page: fill in the form and accept the licence); with the "
               "credentials you receive, download the RoI set (BRACS_RoI) and keep its folders so that "
               "BRACS_RoI/latest_version/{train,val,test}/<class>/*.png lies under the data root",
    ))

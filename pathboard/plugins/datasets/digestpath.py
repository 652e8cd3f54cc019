"""DigestPath 2019, task 2: colonoscopy tissue segmentation and classification (Da et al., "DigestPath:
a benchmark dataset with challenge review for the pathological detection and segmentation of digestive-system",
Medical Image Analysis 2022), https://digestpath2019.grand-challenge.org/.

Official layout of the training data (``Colonoscopy_tissue_segment_dataset``):
``tissue-train-pos-v1/<name>.jpg`` with its pixel lesion mask ``<name>_mask.jpg`` (250 images with
malignant lesions) and ``tissue-train-neg/<name>.jpg`` (410 images without lesions, no masks).
Labels: benign for tissue-train-neg, malignant for tissue-train-pos-v1; :meth:`DigestPath.mask` gives
the lesion mask of an item, and :meth:`DigestPath.segmentation_truth` the segmentation task's ground
truth: lesion pixels malignant, every other pixel benign (a negative image is benign throughout).
The JPEGs carry no resolution metadata; the images were scanned at 20x, taken as 0.5 µm/px by the
usual 10/power convention (``mpp``), so they can be tiled at a physical resolution.

Groups: the images are regions cut from whole slides, several from one slide, and are named
``<specimen>_<scan date> <time>-lv<level>-<x>-<y>-<w>-<h>.jpg``, e.g.
``18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000.jpg``: the specimen (pathology) number, the
scan's timestamp, then the region's level and position. Each item's ``group`` is the specimen number
(``18-04842A``), so regions of one slide, and of slides of one specimen, stay together. The release gives
no patient ids beyond it. A name without that form has no group.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from pathboard.api import (
    IGNORE,
    Dataset,
    DatasetNotFoundError,
    Record,
    hookimpl,
    image_files,
    layout_error,
    mask_to_grid,
    orientation,
    turned,
)

CLASSES = ["benign", "malignant"]
FOLDERS = {"tissue-train-neg": 0, "tissue-train-pos-v1": 1}
MASK = "_mask"
URL = "https://digestpath2019.grand-challenge.org/"
#: the specimen number heading a file name: up to the scan's date (``_2019-05-07 ``) or the level (``-lv1-``)
SPECIMEN = re.compile(r"^(.+?)(?:_\d{4}-\d{2}-\d{2}[ _]|-lv\d+-)")


def specimen(name: str) -> tuple[tuple[str, str], ...]:
    """``(("group", <specimen number>),)`` from an image's file name, or ``()`` when it has none."""
    found = SPECIMEN.match(name)
    return (("group", found.group(1)),) if found else ()


class DigestPath(Dataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/{{tissue-train-pos-v1/<name>.jpg + <name>{MASK}.jpg, tissue-train-neg/<name>.jpg}}"

    def records(self, base: Path):
        if not any((base / f).is_dir() for f in FOLDERS):
            raise layout_error(self.id, base, ", ".join(str(base / f) for f in FOLDERS))
        for folder, label in FOLDERS.items():
            if (base / folder).is_dir():
                yield from (Record(f"{folder}/{name}", label, "train", specimen(name))
                            for name in image_files(base / folder) if not Path(name).stem.endswith(MASK))

    def mask(self, base: Path, path: str) -> Path | None:
        """The lesion mask of an item (white = lesion), or None for a lesion-free (negative) image."""
        item = Path(path)
        if item.parts[0] != "tissue-train-pos-v1":
            return None
        mask = base / item.with_name(f"{item.stem}{MASK}{item.suffix}")
        if not mask.is_file():
            raise DatasetNotFoundError(f"{self.id}: lesion mask {mask} not found for {base / path}")
        return mask

    def segmentation_truth(self, base: Path, path: str, grid_shape: tuple[int, int], cell_size0: int) -> np.ndarray:
        """Class index per grid cell (cells of ``cell_size0`` image pixels): malignant where most of the
        cell's pixels are lesion in the mask (grey level > 127, the JPEG masks being lossy), else benign."""
        benign, malignant = CLASSES.index("benign"), CLASSES.index("malignant")
        mask = self.mask(base, path)
        if mask is None:
            return np.full(grid_shape, benign, dtype=np.int64)
        with Image.open(base / path) as img:
            size, turn = img.size, orientation(img)
        with Image.open(mask) as m:
            m = m.convert("L")
            if m.size != size:  # masks are pixel-aligned with their image; resample one that is not
                m = m.resize(size, Image.NEAREST)
            # open_image turns an image upright by its EXIF orientation: the mask, aligned with the stored
            # pixels, turns with it
            lesion = np.asarray(turned(m, turn)) > 127
        grid = mask_to_grid(lesion.astype(np.int8), grid_shape, cell_size0)
        return np.select([grid == 1, grid == 0], [malignant, benign], IGNORE)


@hookimpl
def register_datasets(register):
    register(DigestPath(
        id="digestpath", folder="Colonoscopy_tissue_segment_dataset", classes=CLASSES,
        prompt_file="digestpath.json", title="DigestPath 2019 colonoscopy tissue", url=URL,
        tags={"organ": "colon", "stain": "H&E", "group": "general"},
        splits=("train",), expected_files=660, mpp=0.5,
        access=f"register at {URL} and download the task-2 training data (tissue-train-pos-v1.zip, "
               "tissue-train-neg.zip); unzip both into <data root>/Colonoscopy_tissue_segment_dataset/",
    ))

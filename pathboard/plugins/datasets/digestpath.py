"""DigestPath 2019, task 2: colonoscopy tissue segmentation and classification (Da et al., "DigestPath:
a benchmark dataset with challenge review for the pathological detection and segmentation of digestive-system",
Medical Image Analysis 2022), https://digestpath2019.grand-challenge.org/.

Official layout of the training data (``Colonoscopy_tissue_segment_dataset``):
``tissue-train-pos-v1/<name>.jpg`` with its pixel lesion mask ``<name>_mask.jpg`` (250 images with
malignant lesions) and ``tissue-train-neg/<name>.jpg`` (410 images without lesions, no masks).
Labels: benign for tissue-train-neg, malignant for tissue-train-pos-v1; :meth:`DigestPath.mask` gives
the lesion mask of an item for the segmentation task.
"""
from __future__ import annotations

from pathlib import Path

from pathboard import hookimpl
from pathboard.core.dataset import Dataset, Record, image_files
from pathboard.core.errors import DatasetNotFoundError

CLASSES = ["benign", "malignant"]
FOLDERS = {"tissue-train-neg": 0, "tissue-train-pos-v1": 1}
MASK = "_mask"
URL = "https://digestpath2019.grand-challenge.org/"


class DigestPath(Dataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/{{tissue-train-pos-v1/<name>.jpg + <name>{MASK}.jpg, tissue-train-neg/<name>.jpg}}"

    def records(self, base: Path):
        if not any((base / f).is_dir() for f in FOLDERS):
            found = ", ".join(sorted(p.name for p in base.iterdir())[:5]) or "nothing"
            raise DatasetNotFoundError(f"{self.id}: {base} is not in the official layout: expected "
                                       f"{', '.join(str(base / f) for f in FOLDERS)}; found {found}")
        for folder, label in FOLDERS.items():
            if (base / folder).is_dir():
                yield from (Record(f"{folder}/{name}", label, "train") for name in image_files(base / folder)
                            if not Path(name).stem.endswith(MASK))

    def mask(self, base: Path, path: str) -> Path | None:
        """The lesion mask of an item (white = lesion), or None for a lesion-free (negative) image."""
        item = Path(path)
        if item.parts[0] != "tissue-train-pos-v1":
            return None
        mask = base / item.with_name(f"{item.stem}{MASK}{item.suffix}")
        if not mask.is_file():
            raise DatasetNotFoundError(f"{self.id}: lesion mask {mask} not found for {base / path}")
        return mask


@hookimpl
def register_datasets(register):
    register(DigestPath(
        id="digestpath", folder="Colonoscopy_tissue_segment_dataset", classes=CLASSES,
        prompt_file="digestpath.json", title="DigestPath 2019 colonoscopy tissue", url=URL,
        tags={"organ": "colon", "stain": "H&E", "group": "general"},
        tasks=frozenset({"zeroshot", "segmentation"}), splits=("train",), expected_files=660,
        access=f"register at {URL} and download the task-2 training data (tissue-train-pos-v1.zip, "
               "tissue-train-neg.zip); unzip both into <data root>/Colonoscopy_tissue_segment_dataset/",
    ))

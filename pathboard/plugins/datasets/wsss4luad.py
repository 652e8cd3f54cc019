"""WSSS4LUAD (Han et al., "WSSS4LUAD: Grand Challenge on Weakly-supervised Tissue Semantic Segmentation
for Lung Adenocarcinoma", 2022), https://wsss4luad.grand-challenge.org/.

Official layout after unpacking: ``WSSS4LUAD/1.training/*.png`` (10,091 patches), each file name ending
in its patch-level label vector in the order [tumor, stroma, normal], e.g.
``436219-7159-48057-[1, 0, 0].png``; ``2.validation/`` and ``3.testing/`` hold ``img/`` + ``mask/`` pairs
for segmentation. Zero-shot classification uses the single-label training patches only, as CONCH does
(4,693 patches: 1,181 tumor, 1,680 stroma, 1,832 normal); patches with several labels are not items.

Groups: a training file name reads ``<slide>-<x>-<y>-[label vector].png``, the slide the patch was cut
from (63 slides in all) and the patch's position in it; the slide is each item's ``group`` (the release
gives no patient ids, so slides of one patient stay separate groups). A name without that form has none.
"""
import re
from pathlib import Path

from pathboard.api import Dataset, Record, hookimpl, image_files, layout_error

CLASSES = ["tumor", "stroma", "normal"]  # the order of the label vector in the file names
LABEL = re.compile(r"\[\s*([01])\s*,\s*([01])\s*,\s*([01])\s*\]")
TRAIN = "1.training"
URL = "https://wsss4luad.grand-challenge.org/"


def slide_id(name: str) -> str | None:
    """The slide a training patch was cut from: its file name up to ``-<x>-<y>-[label vector]`` (None if the
    name does not read so)."""
    head = name[:name.rfind("-[")] if "-[" in name else ""
    parts = head.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and all(parts) and parts[1].isdigit() and parts[2].isdigit() else None


def label_vector(name: str) -> tuple[int, ...] | None:
    """The [tumor, stroma, normal] vector encoded in a training file name (None if there is none)."""
    found = LABEL.findall(name)
    return tuple(int(v) for v in found[-1]) if found else None


class WSSS4LUAD(Dataset):
    @property
    def layout(self) -> str:
        return f"{self.folder}/{TRAIN}/*-[tumor, stroma, normal].png"

    def records(self, base: Path):
        train = base / TRAIN
        if not train.is_dir():
            raise layout_error(self.id, base, self.layout, f"{train} not found")
        for name in image_files(train):
            vector = label_vector(name)
            if vector is not None and sum(vector) == 1:  # single-label patches only
                slide = slide_id(name)
                yield Record(f"{TRAIN}/{name}", vector.index(1), "train", (("group", slide),) if slide else ())


@hookimpl
def register_datasets(register):
    register(WSSS4LUAD(
        id="wsss4luad", folder="WSSS4LUAD", classes=CLASSES, prompt_file="wsss4luad.json",
        title="WSSS4LUAD (single-label training patches)", url=URL,
        tags={"organ": "lung", "stain": "H&E", "group": "general"}, splits=("train",), eval_split=None,
        expected_files=4693,
        access=f"download the training set from the Dataset page of {URL} (a grand-challenge.org account may "
               f"be needed; no checksum is published) and unpack it so that WSSS4LUAD/{TRAIN}/*.png lies under "
               "the data root",
    ))

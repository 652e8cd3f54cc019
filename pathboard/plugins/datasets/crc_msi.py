"""MSI vs MSS in colorectal cancer, FFPE (Kather et al., "Histological images for MSI vs. MSS
classification in gastrointestinal cancer, FFPE samples", Zenodo 2019), https://zenodo.org/records/2530835.

The record publishes one zip per split and class; each unpacks to a class folder (``MSS/`` or
``MSIMUT/``) of 224 x 224 px tiles named ``blk-<id>-TCGA-<case>-01Z-00-DX1.png`` from TCGA-COAD/READ
diagnostic slides. Unzip ``CRC_DX_TRAIN_{MSS,MSIMUT}.zip`` into ``CRC_DX_TRAIN/`` and
``CRC_DX_TEST_{MSS,MSIMUT}.zip`` into ``CRC_DX_TEST/`` under the data root (the split and class named
by the zip: ``CRC_DX_TEST/MSIMUT/*.png``). Train: 46,704 MSS + 46,704 MSIMUT tiles; test: 70,569 MSS +
29,335 MSIMUT. Zero-shot evaluates the test split; a copy with only the test zips is complete for it.

Groups: each tile's ``group`` is the TCGA case (patient) barcode in its name, ``TCGA-<TSS>-<participant>``
(the first 12 characters of the slide barcode, e.g. ``TCGA-A6-2671``); a name without one has none.
"""
from __future__ import annotations

import re
from pathlib import Path

from pathboard.api import Dataset, Record, hookimpl, image_files, layout_error

CLASSES = ["MSS", "MSIMUT"]
SPLITS = {"train": "CRC_DX_TRAIN", "test": "CRC_DX_TEST"}
URL = "https://zenodo.org/records/2530835"
CASE = re.compile(r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}")


def tcga_case(name: str) -> tuple[tuple[str, str], ...]:
    """``(("group", <case barcode>),)`` for a tile name holding a TCGA barcode, else ``()``."""
    found = CASE.search(name)
    return (("group", found.group(0)),) if found else ()


class CRCMSI(Dataset):
    """Items live in two split folders directly under the data root: ``folder`` names the one zero-shot
    needs (so ``pathboard list`` reports it), and the manifest is rooted at the data root."""

    @property
    def layout(self) -> str:
        return f"{{{','.join(SPLITS.values())}}}/{{{','.join(CLASSES)}}}/*.png"

    def locate(self, root: Path) -> Path:
        if not any((root / folder).is_dir() for folder in SPLITS.values()):
            raise layout_error(self.id, root, f"layout {self.layout}, i.e. {root / SPLITS['test']} or "
                                              f"{root / SPLITS['train']}")
        return root

    def records(self, base: Path):
        for split, folder in SPLITS.items():
            for label, cls in enumerate(CLASSES):
                if (base / folder / cls).is_dir():
                    yield from (Record(f"{folder}/{cls}/{name}", label, split, tcga_case(name))
                                for name in image_files(base / folder / cls))


@hookimpl
def register_datasets(register):
    zips = ", ".join(f"{s}_{c}.zip" for s in SPLITS.values() for c in CLASSES)
    register(CRCMSI(
        id="crc-msi", folder=SPLITS["test"], classes=CLASSES, prompt_file="crc-msi.json",
        title="CRC MSI vs MSS (TCGA FFPE tiles)", url=URL, tags={"organ": "colon", "stain": "H&E", "group": "general"},
        splits=("train", "test"), eval_split="test", expected_files=46_704 * 2 + 70_569 + 29_335,
        access=f"download {zips} from {URL} (the record lists their md5s; none are pinned here) and unzip each "
               "into the folder its name starts with: CRC_DX_TRAIN/ or CRC_DX_TEST/ under the data root",
    ))

"""Kather colorectal tissue classes (Kather et al., PLOS Medicine 2019), https://zenodo.org/records/1214456.

Official layout after unzipping: ``NCT-CRC-HE-100K/<CLASS>/*.tif`` (training set, 100,000 patches) and
``CRC-VAL-HE-7K/<CLASS>/*.tif`` (validation set, 7,180 patches); 224 x 224 px at 0.5 um/px.

Groups: none. The patches are named by class and a random code (``TUM-AAAWMSFI.tif``); the release says
NCT-CRC-HE-100K comes from 86 slides and CRC-VAL-HE-7K from 50 patients, but not which patch is whose,
so items carry no ``group``. The two sets are from different patients, so training on one and testing on
the other (``train_from``) is patient-disjoint.
"""
from pathboard.api import Download, ImageFolderDataset, hookimpl

CLASSES = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
TAGS = {"organ": "colon", "stain": "H&E", "group": "general"}


ZENODO = "https://zenodo.org/records/1214456/files"
# md5 checksums as published on the Zenodo record
MD5 = {"CRC-VAL-HE-7K": "2fd1651b4f94ebd818ebf90ad2b6ce06", "NCT-CRC-HE-100K": "035777cf327776a71a05c95da6d6325f"}


@hookimpl
def register_datasets(register):
    for id, folder, n, split in [("crc-val-he-7k", "CRC-VAL-HE-7K", 7180, "test"),
                                 ("nct-crc-he-100k", "NCT-CRC-HE-100K", 100_000, "train")]:
        download = Download(f"{ZENODO}/{folder}.zip?download=1", f"{folder}.zip", f"md5:{MD5[folder]}")
        register(ImageFolderDataset(id=id, folder=folder, classes=CLASSES, prompt_file="crc100k.json",
                                    title=folder, url="https://zenodo.org/records/1214456", tags=TAGS,
                                    expected_files=n, split=split, splits=(split,), downloads=(download,),
                                    train_from="nct-crc-he-100k" if split == "test" else None))

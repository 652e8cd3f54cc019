"""CRC MSI vs MSS (TCGA tiles): splits and class folders from its official layout."""
from __future__ import annotations

import shutil

from support.layouts import dataset, image, labelled, not_found


def test_crc_msi_split_and_class_folders(tmp_path):
    d = dataset("crc-msi")
    for rel in ("CRC_DX_TEST/MSS/blk-AAA-TCGA-A6-2671-01Z-00-DX1.png",
                "CRC_DX_TEST/MSIMUT/blk-BBB-TCGA-AA-3966-01Z-00-DX1.png",
                "CRC_DX_TEST/MSIMUT/blk-CCC-TCGA-AA-3966-01Z-00-DX1.png",
                "CRC_DX_TRAIN/MSS/blk-DDD-TCGA-A6-6650-01Z-00-DX1.png"):
        image(tmp_path / "a" / rel)
    image(tmp_path / "a" / "CRC-VAL-HE-7K" / "ADI" / "x.tif")  # another dataset beside it
    m = d.manifest(tmp_path / "a")
    assert d.classes == ["MSS", "MSIMUT"] and d.eval_split == "test" and d.expected_files == 193_312
    assert labelled(m, d.classes) == {"CRC_DX_TEST/MSIMUT/blk-BBB-TCGA-AA-3966-01Z-00-DX1.png": "MSIMUT",
                                      "CRC_DX_TEST/MSIMUT/blk-CCC-TCGA-AA-3966-01Z-00-DX1.png": "MSIMUT",
                                      "CRC_DX_TEST/MSS/blk-AAA-TCGA-A6-2671-01Z-00-DX1.png": "MSS",
                                      "CRC_DX_TRAIN/MSS/blk-DDD-TCGA-A6-6650-01Z-00-DX1.png": "MSS"}
    assert m.splits == ["test", "test", "test", "train"] and not d.downloads and "2530835" in d.access
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert d.manifest(tmp_path / "b").hash == m.hash
    (tmp_path / "b/CRC_DX_TEST/MSIMUT/blk-CCC-TCGA-AA-3966-01Z-00-DX1.png").rename(
        tmp_path / "b/CRC_DX_TEST/MSS/blk-CCC-TCGA-AA-3966-01Z-00-DX1.png")
    assert d.manifest(tmp_path / "b").hash != m.hash
    not_found("crc-msi", tmp_path / "a" / "CRC-VAL-HE-7K", "CRC_DX_TEST", "CRC_DX_TRAIN", "found ADI")

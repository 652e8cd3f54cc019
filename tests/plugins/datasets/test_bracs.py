"""BRACS RoIs: splits and classes from its official layout."""
from __future__ import annotations

import shutil

from PIL import Image
from support.layouts import dataset, image, labelled, not_found


def test_bracs_splits_and_classes(tmp_path):
    base = tmp_path / "BRACS_RoI" / "latest_version"
    for rel in ("train/0_N/BRACS_1003728_N_1.png", "train/6_IC/BRACS_1003691_IC_2.png",
                "val/3_FEA/BRACS_1286_FEA_3.png",
                "test/4_ADH/BRACS_1228_ADH_4.png", "test/5_DCIS/BRACS_1228_DCIS_5.png"):
        image(base / rel)
    d = dataset("bracs")
    m = d.manifest(tmp_path)
    assert d.classes == ["0_N", "1_PB", "2_UDH", "3_FEA", "4_ADH", "5_DCIS", "6_IC"] and not d.ordinal
    assert labelled(m, d.classes) == {"test/4_ADH/BRACS_1228_ADH_4.png": "4_ADH",
                                      "test/5_DCIS/BRACS_1228_DCIS_5.png": "5_DCIS",
                                      "train/0_N/BRACS_1003728_N_1.png": "0_N",
                                      "train/6_IC/BRACS_1003691_IC_2.png": "6_IC",
                                      "val/3_FEA/BRACS_1286_FEA_3.png": "3_FEA"}
    assert m.splits == ["test", "test", "train", "train", "val"] and d.eval_split == "test"
    assert d.expected_files == 4539 and not d.downloads and "bracs.icar.cnr.it" in d.access
    limit = Image.MAX_IMAGE_PIXELS
    assert d.open_image(m.root, m.paths[0]).size == (16, 16) and Image.MAX_IMAGE_PIXELS == limit
    assert d.manifest(tmp_path).hash == m.hash
    (base / "test/5_DCIS/BRACS_1228_DCIS_5.png").rename(base / "test/4_ADH/BRACS_1228_DCIS_5.png")
    assert d.manifest(tmp_path).hash != m.hash
    shutil.rmtree(base)
    (base / "previous_version").mkdir(parents=True)
    not_found("bracs", tmp_path, str(base / "test"), "found previous_version")

"""SICAPv2: labels and splits from the partition sheets; its prompt set."""
from __future__ import annotations

import shutil

from support.layouts import HEADER, TEST_ROWS, dataset, labelled, not_found, sheet, write_sicapv2


def test_sicapv2_labels_and_splits_from_the_partition_sheets(tmp_path):
    d = dataset("sicapv2")
    write_sicapv2(tmp_path / "a")
    m = d.manifest(tmp_path / "a")
    assert d.classes == ["NC", "G3", "G4", "G5"] and d.ordinal and d.eval_split == "test"
    assert labelled(m, d.classes) == {"images/a.jpg": "NC", "images/b.jpg": "G3", "images/c.jpg": "G4",
                                      "images/d.jpg": "G5", "images/e.jpg": "G3", "images/t1.jpg": "G5",
                                      "images/t2.jpg": "NC", "images/t3.jpg": None}  # t3 is not one-hot
    assert dict(zip(m.paths, m.splits))["images/a.jpg"] == "test" and m.splits.count("train") == 3
    assert m.meta[m.paths.index("images/t2.jpg")] == {"cv_fold": "2"} and m.meta[0] == {}
    assert not d.downloads and "data.mendeley.com/datasets/9xxm58dvs3" in d.access  # no published checksum

    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert d.manifest(tmp_path / "b").hash == m.hash
    changed = [list(r) for r in TEST_ROWS]
    changed[4][1:4] = [0, 0, 1]  # e.jpg: G3 -> G4
    sheet(tmp_path / "b/SICAPv2/partition/Test/Test.xlsx", HEADER, [[i, *r] for i, r in enumerate(changed)])
    relabelled = d.manifest(tmp_path / "b")
    assert relabelled.hash != m.hash and labelled(relabelled, d.classes)["images/e.jpg"] == "G4"

    (tmp_path / "a/SICAPv2/partition/Test/Test.xlsx").unlink()
    not_found("sicapv2", tmp_path / "a", "partition/Test/Test.xlsx", "found images, masks, partition")
    sheet(tmp_path / "a/SICAPv2/partition/Test/Test.xlsx", ["image", "label"], [["a.jpg", 0]])
    not_found("sicapv2", tmp_path / "a", "expected image_name, NC, G3, G4, G5")


def test_sicapv2_prompt_set():
    p = dataset("sicapv2").prompts()
    assert p.classes["NC"] == ["non-cancerous tissue", "non-cancerous prostate tissue", "benign tissue",
                               "benign glands", "benign prostate glands", "benign prostate tissue"]
    for grade, word in (("3", "well-"), ("4", "moderately "), ("5", "poorly ")):
        assert p.classes[f"G{grade}"] == [f"gleason grade {grade}", f"gleason pattern {grade}", "prostate cancer",
                                          f"{word}differentiated prostatic adenocarcinoma"]

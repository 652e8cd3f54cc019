"""WSSS4LUAD: single-label patches from file names; CONCH's prompt set."""
from __future__ import annotations

import shutil

import numpy as np
from support.layouts import WSSS, dataset, labelled, not_found, write_wsss4luad


def test_wsss4luad_single_label_patches_from_file_names(tmp_path):
    d = dataset("wsss4luad")
    train = write_wsss4luad(tmp_path / "a")
    m = d.manifest(tmp_path / "a")
    assert d.classes == ["tumor", "stroma", "normal"] and not d.ordinal
    assert labelled(m, d.classes) == {f"1.training/{n}": c for n, c in WSSS.items() if c}  # multi-label: no items
    assert set(m.splits) == {"train"} and d.eval_split is None and d.expected_files == 4693
    assert d.tags == {"organ": "lung", "stain": "H&E", "group": "general"} and "general" in d.groups

    write_wsss4luad(tmp_path / "b")
    for src in sorted(train.iterdir()):  # same names, sizes and mtimes elsewhere: same hash
        shutil.copy2(src, tmp_path / "b" / "WSSS4LUAD" / "1.training" / src.name)
    assert d.manifest(tmp_path / "b").hash == m.hash
    (train / "436221-512-777-[0, 0, 1].png").rename(train / "436221-512-777-[0, 1, 0].png")
    relabelled = d.manifest(tmp_path / "a")
    assert relabelled.hash != m.hash and np.bincount(relabelled.labels).tolist() == [1, 2, 1]

    shutil.rmtree(train)
    not_found("wsss4luad", tmp_path / "a", str(train), "found 2.validation")


def test_wsss4luad_prompt_set_is_conchs():
    p = dataset("wsss4luad").prompts()
    assert p.classes == {
        "tumor": ["cancerous tissue", "tumor epithelial tissue", "tumor tissue"],
        "stroma": ["cancer-associated stroma", "cancer-associated stromal tissue", "tumor-associated stroma",
                   "tumor-associated stromal tissue"],
        "normal": ["non-cancerous tissue", "non-tumor", "normal tissue"],
    }
    assert len(p.templates) == 22 and "CONCH" in p.source

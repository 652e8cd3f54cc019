"""Skin cancer tiles: labels and splits from tiles.csv."""
from __future__ import annotations

import shutil

from support.layouts import dataset, labelled, not_found, write_skin


def test_skincancer_labels_and_splits_from_tiles_csv(tmp_path):
    d = dataset("skincancer")
    write_skin(tmp_path / "a")
    m = d.manifest(tmp_path / "a")
    assert len(d.classes) == 16 and d.eval_split == "test" and d.tags["organ"] == "skin"
    assert labelled(m, d.classes) == {
        "data/tiles/nontumor_skin_dermis_dermis/nontumor_skin_dermis_dermis_ws_1_1.jpg": "nontumor_skin_dermis_dermis",
        "data/tiles/nontumor_skin_dermis_dermis/nontumor_skin_dermis_dermis_ws_1_2.jpg": "nontumor_skin_dermis_dermis",
        "data/tiles/tumor_skin_epithelial_bcc/tumor_skin_epithelial_bcc_ws_2_1.jpg": "tumor_skin_epithelial_bcc",
        "data/tiles/tumor_skin_naevus_naevus/tumor_skin_naevus_naevus_ws_3_1.jpg": "tumor_skin_naevus_naevus"}
    assert m.splits == ["train", "test", "val", "test"]
    assert set(d.prompts().classes) == set(d.classes)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert d.manifest(tmp_path / "b").hash == m.hash
    write_skin(tmp_path / "b", relabel=True)
    assert d.manifest(tmp_path / "b").hash != m.hash

    (tmp_path / "a/skincancer/data/tiles-v2.csv").unlink()
    not_found("skincancer", tmp_path / "a", "skincancer/data/tiles-v2.csv", "found data")

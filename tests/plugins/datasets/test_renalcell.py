"""RenalCell: tissue and lymphocyte subsets from its official layout."""
from __future__ import annotations

import shutil

from support.layouts import dataset, image, not_found


def test_renalcell_tissue_and_lymphocyte_subsets(tmp_path):
    for rel in ("tissue_classification/cancer/TCGA-AK-3458_40707_15820_cancer_5163.png",
                "tissue_classification/blood/TCGA-EU-5906_18024_35798_blood_189.png",
                "tissue_classification/other/TCGA-G6-A8L7_88357_21706_other_534.png",
                "binary_lymphocytes/immune/TCGA-B0-5077.svs_Immune cellsTile 970.png",
                "binary_lymphocytes/tumor/TCGA-G6-A8L6.svs_Immune cellsTile 37.png"):
        image(tmp_path / rel)
    tissue, lymph = dataset("renalcell"), dataset("renalcell-lymph")
    m = tissue.manifest(tmp_path)
    assert tissue.classes == ["cancer", "normal", "stroma", "blood", "empty", "other"]
    assert [tissue.classes[i] for i in m.labels] == ["blood", "cancer", "other"]
    ml = lymph.manifest(tmp_path)
    assert [lymph.classes[i] for i in ml.labels] == ["immune", "tumor"] and ml.paths[0].startswith("immune/")
    assert (tissue.expected_files, lymph.expected_files) == (39_458, 25_095)
    assert tissue.manifest(tmp_path).hash == m.hash
    (tmp_path / "tissue_classification/empty").mkdir()
    (tmp_path / "tissue_classification/other/TCGA-G6-A8L7_88357_21706_other_534.png").rename(
        tmp_path / "tissue_classification/empty/TCGA-G6-A8L7_88357_21706_other_534.png")
    assert tissue.manifest(tmp_path).hash != m.hash
    shutil.rmtree(tmp_path / "binary_lymphocytes/immune")
    shutil.rmtree(tmp_path / "binary_lymphocytes/tumor")
    (tmp_path / "binary_lymphocytes/high").mkdir()
    not_found("renalcell-lymph", tmp_path, "binary_lymphocytes/immune", "found high")

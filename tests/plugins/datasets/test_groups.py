"""Each loader's groups (Record meta ``group``: the patient, case, slide or specimen) as it reads them from
its official layout: what every split and interval keeps together."""
from __future__ import annotations

from pathlib import Path

from support.layouts import (
    TILS_CASES,
    WSSS,
    image,
    sheet,
    write_bach,
    write_gtex,
    write_pannuke,
    write_sicapv2,
    write_skin,
    write_tcga,
    write_tils,
    write_tissuenet,
    write_wsss4luad,
)

from pathboard.core.engine import plugins
from pathboard.plugins.datasets.skincancer import tile_group
from pathboard.plugins.datasets.wsss4luad import slide_id


def groups(dataset_id: str, root: Path) -> dict[str, str | None]:
    """{item path: its group (None when it has none)} of a dataset's manifest under ``root``."""
    m = plugins.get("dataset", dataset_id).manifest(root)
    return {p: meta.get("group") for p, meta in zip(m.paths, m.meta)}


def files(root: Path, *paths: str) -> Path:
    for path in paths:
        image(root / path)
    return root


SICAP_NAMES = {"16B0001851_Block_Region_1_0_0_xini_6827_yini_59786.jpg": "test",
               "16B0001851_Block_Region_2_1_3_xini_7339_yini_60298.jpg": "test",
               "16B0003388_Block_Region_0_2_2_xini_100_yini_200.jpg": "test",  # a second slide of patient 1
               "17B0032153_Block_Region_4_0_1_xini_300_yini_400.jpg": "train",
               "18B0006169_Block_Region_0_0_0_xini_1_yini_2.jpg": "train"}  # not in wsi_labels.xlsx


def write_sicap_named(root: Path, wsi_labels: bool = True) -> Path:
    base = root / "SICAPv2"
    header = ["", "image_name", "NC", "G3", "G4", "G5", "G4C"]
    for name in SICAP_NAMES:
        image(base / "images" / name, 32)
    for split, sheet_name in (("test", "Test"), ("train", "Train")):
        rows = [[i, n, 1, 0, 0, 0, 0] for i, (n, s) in enumerate(SICAP_NAMES.items()) if s == split]
        sheet(base / f"partition/Test/{sheet_name}.xlsx", header, rows)
    if wsi_labels:
        sheet(base / "wsi_labels.xlsx", ["slide_id", "patient_id", "Gleason_primary", "Gleason_secondary"],
              [["16B0001851", 1, 3, 3], ["16B0003388", 1, 4, 3], ["17B0032153", 2, 0, 0]])
    return root


def test_wsss4luad_groups_are_the_slides_in_the_file_names(tmp_path):
    write_wsss4luad(tmp_path)
    assert groups("wsss4luad", tmp_path) == {f"1.training/{n}": n.split("-")[0] for n, c in WSSS.items() if c}
    assert slide_id("TCGA-55-8514-01Z-00-DX1-100-2200-[0, 1, 0].png") == "TCGA-55-8514-01Z-00-DX1"
    assert slide_id("patch-[1, 0, 0].png") is None and slide_id("a-b-c-[1, 0, 0].png") is None


def test_crc_msi_groups_are_the_tcga_cases_across_splits(tmp_path):
    files(tmp_path, "CRC_DX_TEST/MSS/blk-AAAFIYHTSVAV-TCGA-A6-2671-01Z-00-DX1.png",
          "CRC_DX_TEST/MSIMUT/blk-BBB-TCGA-AA-3966-01Z-00-DX1.png",
          "CRC_DX_TRAIN/MSS/blk-DDD-TCGA-A6-2671-01Z-00-DX1.png", "CRC_DX_TRAIN/MSS/tile.png")
    assert groups("crc-msi", tmp_path) == {
        "CRC_DX_TEST/MSIMUT/blk-BBB-TCGA-AA-3966-01Z-00-DX1.png": "TCGA-AA-3966",
        "CRC_DX_TEST/MSS/blk-AAAFIYHTSVAV-TCGA-A6-2671-01Z-00-DX1.png": "TCGA-A6-2671",
        "CRC_DX_TRAIN/MSS/blk-DDD-TCGA-A6-2671-01Z-00-DX1.png": "TCGA-A6-2671",  # the same patient in both splits
        "CRC_DX_TRAIN/MSS/tile.png": None}


def test_tcga_tils_groups_are_the_cases_of_the_patches(tmp_path):
    write_tils(tmp_path)
    m = plugins.get("dataset", "tcga-tils").manifest(tmp_path)
    assert [x["group"] for x in m.meta] == [TILS_CASES[s] for s in m.splits]
    assert all(x["study"] in ("cesc", "luad") for x in m.meta)  # the study is kept


def test_renalcell_groups_are_the_tcga_cases(tmp_path):
    files(tmp_path, "tissue_classification/cancer/TCGA-AK-3458_40707_15820_cancer_5163.png",
          "tissue_classification/blood/TCGA-AK-3458_18024_35798_blood_189.png",
          "binary_lymphocytes/immune/TCGA-B0-5077.svs_Immune cellsTile 970.png")
    assert set(groups("renalcell", tmp_path).values()) == {"TCGA-AK-3458"}
    assert groups("renalcell-lymph", tmp_path) == {"immune/TCGA-B0-5077.svs_Immune cellsTile 970.png": "TCGA-B0-5077"}


def test_digestpath_groups_are_the_specimen_numbers(tmp_path):
    base = "Colonoscopy_tissue_segment_dataset"
    files(tmp_path, f"{base}/tissue-train-pos-v1/18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000.jpg",
          f"{base}/tissue-train-pos-v1/18-04842A_2019-05-07 23_56_16-lv1-30000-10000-2000-2000.jpg",
          f"{base}/tissue-train-pos-v1/D20190105401_2019-06-10 10_33_58-lv1-14461-17591-3264-2960.jpg",
          f"{base}/tissue-train-neg/2018_64982_1-3_2019-02-25 21_57_36-lv0-34297-59778-2037-1445.jpg",
          f"{base}/tissue-train-neg/18-04842A-lv1-1-2-3-4.jpg", f"{base}/tissue-train-neg/image.jpg")
    got = groups("digestpath", tmp_path)
    assert sorted(got.values(), key=str) == ["18-04842A", "18-04842A", "18-04842A", "2018_64982_1-3", "D20190105401",
                                             None]
    assert got["tissue-train-neg/image.jpg"] is None


def test_sicapv2_groups_are_patients_from_wsi_labels_else_slides(tmp_path):
    got = groups("sicapv2", write_sicap_named(tmp_path / "a"))
    assert got == {f"images/{n}": g for n, g in zip(SICAP_NAMES, ["patient-1", "patient-1", "patient-1", "patient-2",
                                                                  "18B0006169"])}
    got = groups("sicapv2", write_sicap_named(tmp_path / "b", wsi_labels=False))  # no sheet: the slides
    assert set(got.values()) == {"16B0001851", "16B0003388", "17B0032153", "18B0006169"}
    assert set(groups("sicapv2", write_sicapv2(tmp_path / "c").parent).values()) == {None}  # names without a slide


def test_skincancer_groups_are_the_cases(tmp_path):
    write_skin(tmp_path)
    got = {Path(p).stem.split("_ws_")[1]: g for p, g in groups("skincancer", tmp_path).items()}
    assert got == {"1_1": "case-1", "1_2": "case-1", "2_1": "case-2", "3_1": "case-3"}  # the CSV's case column
    assert tile_group({}, "nontumor_skin_dermis_dermis_ws_44_5.jpg") == (("group", "ws_44"),)  # no case column
    assert tile_group({"case": ""}, "tile.jpg") == ()


def test_bracs_groups_are_the_slides_in_the_names(tmp_path):
    files(tmp_path / "BRACS_RoI/latest_version", "train/0_N/BRACS_1003728_N_1.png", "train/6_IC/BRACS_1003728_IC_2.png",
          "test/4_ADH/BRACS_1228_ADH_4.png", "val/3_FEA/roi.png")
    assert groups("bracs", tmp_path) == {"test/4_ADH/BRACS_1228_ADH_4.png": "BRACS_1228",
                                         "train/0_N/BRACS_1003728_N_1.png": "BRACS_1003728",
                                         "train/6_IC/BRACS_1003728_IC_2.png": "BRACS_1003728",
                                         "val/3_FEA/roi.png": None}


def test_sets_that_release_no_patient_have_no_groups(tmp_path, shared_data):
    write_bach(tmp_path)
    write_pannuke(tmp_path)
    assert set(groups("bach", tmp_path).values()) == {None}
    assert set(groups("pannuke", tmp_path).values()) == {None}
    assert set(groups("crc-val-he-7k", shared_data).values()) == {None}


def test_slide_sets_group_by_case_donor_or_patient(tmp_path, shared_data):
    svs = shared_data / "slides" / "CMU-1-Small-Region.svs"
    write_tcga(tmp_path, svs)
    m = plugins.get("dataset", "tcga-cesc").manifest(tmp_path)
    assert [x["group"] for x in m.meta] == [x["case"] for x in m.meta]
    assert sorted(x["group"] for x in m.meta) == ["TCGA-C5-A1BE", "TCGA-C5-A1BE", "TCGA-EK-A2RE"]  # DX + TS slide
    write_gtex(tmp_path, svs)
    m = plugins.get("dataset", "gtex-cervix").manifest(tmp_path)
    assert [x["group"] for x in m.meta] == [x["subject"] for x in m.meta] == ["GTEX-1117F", "GTEX-1117F", "GTEX-111CU"]
    write_tissuenet(tmp_path)
    m = plugins.get("dataset", "tissuenet").manifest(tmp_path)
    assert [x["group"] for x in m.meta] == [x["case"] for x in m.meta] == ["C01", "C01", "C02", "C02"]


def test_camelyon16_and_dhmc_slides_are_their_own_groups(request):
    got = groups("camelyon16", request.getfixturevalue("camelyon"))
    assert got == {p: Path(p).stem for p in got} and len(set(got.values())) == 5
    got = groups("dhmc-luad", request.getfixturevalue("dhmc"))
    assert got == {p: Path(p).stem for p in got} and "DHMC_0005" in got.values()


def test_ebrains_groups_are_the_patients(request):
    m = plugins.get("dataset", "ebrains").manifest(request.getfixturevalue("atlas"))
    assert [x["group"] for x in m.meta] == [x["pat_id"] for x in m.meta]
    assert {x["group"] for x in m.meta} == {"patient_1862", "patient_2", "patient_3", "patient_4", "patient_5"}

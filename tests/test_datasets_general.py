"""Issue-4 general patch-level loaders, read from tiny fixtures written in each official layout."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
from helpers import pathboard
from PIL import Image

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError

RNG = np.random.default_rng(0)


def image(path: Path, size: int = 16) -> Path:
    """A small random RGB image in the format its suffix names (.png, .jpg, .tif)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def sheet(path: Path, header: list, rows: list[list]) -> Path:
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    wb.active.append(header)
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def dataset(id):
    return plugins.get("dataset", id)


def not_found(id, root, *fragments):
    """The loader's error for ``root``: one line naming each fragment."""
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset(id).manifest(root)
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def labelled(m, names):
    """{path: class name} of a manifest."""
    return {p: names[label] if label >= 0 else None for p, label in zip(m.paths, m.labels.tolist())}


# --- WSSS4LUAD: labels in the file names -------------------------------------------------------------------

WSSS = {"436219-7159-48057-[1, 0, 0].png": "tumor", "436219-7159-48313-[0, 1, 0].png": "stroma",
        "436220-1021-2210-[0, 0, 1].png": "normal", "436221-512-777-[0, 0, 1].png": "normal",
        "436221-99-100-[1, 1, 0].png": None, "436222-5-5-[1, 0, 1].png": None}


def write_wsss4luad(root: Path) -> Path:
    train = root / "WSSS4LUAD" / "1.training"
    for name in WSSS:
        image(train / name)
    image(root / "WSSS4LUAD" / "2.validation" / "img" / "00.png")
    image(root / "WSSS4LUAD" / "2.validation" / "mask" / "00.png")
    return train


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


# --- SICAPv2: labels in the partition sheets --------------------------------------------------------------

HEADER = ["", "image_name", "NC", "G3", "G4", "G5", "G4C"]  # pandas' unnamed index column first
TEST_ROWS = [["a.jpg", 1, 0, 0, 0, 0], ["b.jpg", 0, 1, 0, 0, 0], ["c.jpg", 0, 0, 1, 0, 1], ["d.jpg", 0, 0, 0, 1, 0],
             ["e.jpg", 0, 1, 0, 0, 0]]
TRAIN_ROWS = [["t1.jpg", 0, 0, 0, 1, 0], ["t2.jpg", 1, 0, 0, 0, 0], ["t3.jpg", 0, 1, 1, 0, 0],
              ["gone.jpg", 1, 0, 0, 0, 0]]


def write_sicapv2(root: Path, test_rows=TEST_ROWS) -> Path:
    base = root / "SICAPv2"
    for name, *_ in TEST_ROWS + TRAIN_ROWS[:-1]:  # gone.jpg is listed but not on disk
        image(base / "images" / name, 32)
    (base / "masks").mkdir()
    sheet(base / "partition/Test/Test.xlsx", HEADER, [[i, *r] for i, r in enumerate(test_rows)])
    sheet(base / "partition/Test/Train.xlsx", HEADER, [[i, *r] for i, r in enumerate(TRAIN_ROWS)])
    sheet(base / "partition/Validation/Val2/Test.xlsx", HEADER, [[0, *TRAIN_ROWS[1]]])
    return base


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


# --- BACH: microscopy photos by folder, slides with ImageScope XML ----------------------------------------

BACH_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Annotations MicronsPerPixel="0.467000">
  <Annotation Id="1" Name="" ReadOnly="0" LineColor="65280">
    <Attributes><Attribute Name="Description" Id="0" Value=""/></Attributes>
    <Regions>
      <RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region" ColumnWidth="-1"/></RegionAttributeHeaders>
      <Region Id="1" Type="0" Text="Benign" NegativeROA="0">
        <Attributes/>
        <Vertices><Vertex X="10" Y="20" Z="0"/><Vertex X="30.5" Y="20" Z="0"/><Vertex X="30" Y="45" Z="0"/></Vertices>
      </Region>
      <Region Id="2" Type="0" Text="" NegativeROA="0">
        <Attributes><Attribute Name="1" Id="0" Value="Carcinoma in situ"/></Attributes>
        <Vertices>
          <Vertex X="100" Y="100"/><Vertex X="200" Y="100"/><Vertex X="200" Y="200"/><Vertex X="100" Y="200"/>
        </Vertices>
      </Region>
      <Region Id="3" Type="0" Text="Invasive carcinoma" NegativeROA="0">
        <Vertices><Vertex X="1" Y="1"/><Vertex X="2" Y="1"/><Vertex X="2" Y="3"/></Vertices>
      </Region>
      <Region Id="4" Type="0" Text="Benign"><Vertices><Vertex X="1" Y="1"/></Vertices></Region>
    </Regions>
  </Annotation>
</Annotations>
"""


def write_bach(root: Path) -> Path:
    top = root / "ICIAR2018_BACH_Challenge"
    for cls, names in {"Normal": ["n001.tif", "n002.tif"], "Benign": ["b001.tif"], "InSitu": ["is001.tif"],
                       "Invasive": ["iv001.tif", "iv002.tif"]}.items():
        for name in names:
            image(top / "Photos" / cls / name)
    (top / "Photos" / "microscopy_ground_truth.csv").write_text("n001.tif,Normal\n")
    (top / "WSI" / "gt_thumbnails").mkdir(parents=True)
    for name in ("A01.svs", "A02.svs", "03.svs"):
        (top / "WSI" / name).write_bytes(name.encode() * 10)
    (top / "WSI" / "A01.xml").write_text(BACH_XML)
    return top


def test_bach_photos_by_folder_and_slides_with_xml_regions(tmp_path):
    top = write_bach(tmp_path / "a")
    d = dataset("bach")
    m = d.manifest(tmp_path / "a")
    assert d.classes == ["Normal", "Benign", "InSitu", "Invasive"] and d.expected_files == 400
    assert labelled(m, d.classes) == {"Normal/n001.tif": "Normal", "Normal/n002.tif": "Normal",
                                      "Benign/b001.tif": "Benign", "InSitu/is001.tif": "InSitu",
                                      "Invasive/iv001.tif": "Invasive", "Invasive/iv002.tif": "Invasive"}
    assert d.open_image(m.root, m.paths[0]).size == (16, 16)
    (dl,) = d.downloads
    assert dl.checksum == "md5:8ae1801334aa943c44627c1eef3631b2" and dl.extract_to == ""
    (top / "Photos/Benign/b001.tif").rename(top / "Photos/InSitu/b001.tif")
    assert d.manifest(tmp_path / "a").hash != m.hash

    w = dataset("bach-wsi")
    slides = w.manifest(tmp_path / "a")
    assert w.level == "wsi" and slides.paths == ["03.svs", "A01.svs", "A02.svs"] and set(slides.labels) == {-1}
    regions = w.annotations(slides.root, "A01.svs")
    assert [r.label for r in regions] == ["Benign", "InSitu", "Invasive"]  # the 1-vertex region is dropped
    assert regions[0].polygon == ((10.0, 20.0), (30.5, 20.0), (30.0, 45.0)) and len(regions[1].polygon) == 4
    assert w.annotations(slides.root, "A02.svs") == []

    shutil.rmtree(top / "Photos")
    not_found("bach", tmp_path / "a", str(top / "Photos"), "ICIAR2018_BACH_Challenge/Photos/<Normal|Benign")
    for slide in (top / "WSI").glob("*.svs"):
        slide.unlink()
    not_found("bach-wsi", tmp_path / "a", "no slides", "found A01.xml, gt_thumbnails")


def test_bach_manifest_hash_is_stable(tmp_path):
    write_bach(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert dataset("bach").manifest(tmp_path / "a").hash == dataset("bach").manifest(tmp_path / "b").hash


# --- SkinCancer: tiles-v2.csv -----------------------------------------------------------------------------

def write_skin(root: Path, relabel: bool = False) -> Path:
    data = root / "skincancer" / "data"
    rows = [("nontumor_skin_dermis_dermis", "ws_1_1", "Train"), ("nontumor_skin_dermis_dermis", "ws_1_2", "Test"),
            ("tumor_skin_epithelial_bcc", "ws_2_1", "Validation"), ("tumor_skin_naevus_naevus", "ws_3_1", "Test"),
            ("tumor_skin_melanoma_melanoma", "ws_4_1", "Test")]
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "tiles-v2.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "file", "case", "class", "set"])
        for i, (cls, tile, split) in enumerate(rows):
            file = f"data/tiles/{cls}/{cls}_{tile}.jpg"
            if cls != "tumor_skin_melanoma_melanoma":  # listed, not on disk
                image(root / "skincancer" / file)
            label = "tumor_skin_epithelial_sqcc" if relabel and tile == "ws_3_1" else cls
            w.writerow([i, file, tile.split("_")[1], label, split])
    (data / "class_dict.json").write_text("{}")
    return data


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


# --- CRC MSI/MSS: split folders of class folders -----------------------------------------------------------

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


# --- RenalCell: tissue textures and lymphocyte density -----------------------------------------------------

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


# --- DigestPath: pos/neg folders, lesion masks -------------------------------------------------------------

def test_digestpath_labels_and_lesion_masks(tmp_path):
    base = tmp_path / "Colonoscopy_tissue_segment_dataset"
    image(base / "tissue-train-pos-v1/18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000.jpg")
    image(base / "tissue-train-pos-v1/18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000_mask.jpg")
    image(base / "tissue-train-pos-v1/D20190105401_2019-06-10 10_33_58-lv1-14461-17591-3264-2960.jpg")
    image(base / "tissue-train-neg/2018_64982_1-3_2019-02-25 21_57_36-lv0-34297-59778-2037-1445.jpg")
    d = dataset("digestpath")
    m = d.manifest(tmp_path)
    assert d.tasks == {"zeroshot", "fewshot", "segmentation", "prompt-sensitivity", "robustness"} and d.classes == ["benign", "malignant"]
    assert [d.classes[i] for i in m.labels] == ["benign", "malignant", "malignant"]  # masks are not items
    assert all("_mask" not in p for p in m.paths)
    pos, neg = m.paths[1], m.paths[0]
    assert d.mask(m.root, pos) == base / Path(pos).with_name(Path(pos).stem + "_mask.jpg")
    assert d.mask(m.root, pos).name == "18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000_mask.jpg"
    assert d.mask(m.root, neg) is None
    with pytest.raises(DatasetNotFoundError, match="lesion mask .* not found"):
        d.mask(m.root, m.paths[2])
    assert d.manifest(tmp_path).hash == m.hash
    (base / "tissue-train-neg" / Path(neg).name).rename(base / "tissue-train-pos-v1" / Path(neg).name)
    assert d.manifest(tmp_path).hash != m.hash
    shutil.rmtree(base / "tissue-train-neg")
    shutil.rmtree(base / "tissue-train-pos-v1")
    (base / "images").mkdir()
    not_found("digestpath", tmp_path, "tissue-train-pos-v1", "tissue-train-neg", "found images")


# --- BRACS: split folders of class folders -----------------------------------------------------------------

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


def test_every_general_loader_declares_its_card():
    ids = ["wsss4luad", "sicapv2", "bach", "bach-wsi", "skincancer", "crc-msi", "renalcell", "renalcell-lymph",
           "digestpath", "bracs"]
    for id in ids:
        d = dataset(id)
        assert d.tags["stain"] == "H&E" and d.tags["group"] == "general" and d.tags["organ"], id
        assert d.title and d.url and (d.downloads or d.access), id
        assert d.eval_split is None or d.eval_split in d.splits, id  # RenalCell has no official split
        prompts = d.prompts()
        assert list(prompts.prompts("single", d.classes)) == d.classes and prompts.source, id
        assert all(len(v) >= 3 for v in prompts.classes.values()), id
        for item in d.downloads:
            assert item.checksum.split(":")[0] in {"md5", "sha256"} and len(item.checksum.split(":")[1]) in {32, 64}


# --- the CLI end to end -----------------------------------------------------------------------------------

def test_cli_runs_wsss4luad_and_sicapv2_fixtures(tmp_path, tiny_hub):
    root = tmp_path / "data"
    write_wsss4luad(root)
    write_sicapv2(root)
    db = tmp_path / "pb.duckdb"
    out = pathboard("run", "--models", "quiltnet-b32", "--datasets", "wsss4luad,sicapv2", "--data-root", root,
                    "--prompt-modes", "single", "--db", db, "--workers", "0", "--tasks", "zeroshot")
    assert out.returncode == 0, out.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT dataset, prompt_mode, metric, n FROM leaderboard").fetchall()
    metrics = {ds: {m for d, _, m, _ in rows if d == ds} for ds in ("wsss4luad", "sicapv2")}
    assert {"weighted_f1", "balanced_accuracy", "cohen_kappa"} <= metrics["wsss4luad"] & metrics["sicapv2"]
    assert "quadratic_kappa" in metrics["sicapv2"] and "quadratic_kappa" not in metrics["wsss4luad"]
    assert {p for _, p, _, _ in rows} == {"single"}
    n = {d: n for d, _, _, n in rows}
    assert n == {"wsss4luad": 4, "sicapv2": 5}  # single-label patches; the Test split only

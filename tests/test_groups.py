"""Item groups (Record meta "group": a patient, case, slide or near-duplicate cluster) as each loader reads them
from its official layout, and LC25000's near-duplicate groups on the real sample (pathboard.core.science.grouping)."""
from __future__ import annotations

import shutil
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image
from test_datasets_cervix import TILS_CASES, write_gtex, write_pannuke, write_tcga, write_tils, write_tissuenet
from test_datasets_general import WSSS, image, sheet, write_bach, write_sicapv2, write_skin, write_wsss4luad
from test_datasets_wsi import atlas, camelyon, dhmc  # noqa: F401  (pytest fixtures, used by name)

from pathboard.core.engine import plugins
from pathboard.core.science import grouping
from pathboard.plugins.datasets.skincancer import tile_group
from pathboard.plugins.datasets.wsss4luad import slide_id

LUNG = "lung_colon_image_set/lung_image_sets"


def groups(dataset_id: str, root: Path) -> dict[str, str | None]:
    """{item path: its group (None when it has none)} of a dataset's manifest under ``root``."""
    m = plugins.get("dataset", dataset_id).manifest(root)
    return {p: meta.get("group") for p, meta in zip(m.paths, m.meta)}


def files(root: Path, *paths: str) -> Path:
    for path in paths:
        image(root / path)
    return root


# --- groups read from file names ----------------------------------------------------------------------------

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


# --- slide sets: case, donor, patient or the slide itself ---------------------------------------------------

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


# --- LC25000: near-duplicate groups -------------------------------------------------------------------------

T = Image.Transpose
DIHEDRAL = (T.ROTATE_90, T.ROTATE_180, T.ROTATE_270, T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.TRANSPOSE, T.TRANSVERSE)


def augment(img: Image.Image, angle: float, then: T | None = None) -> Image.Image:
    """A copy made as LC25000's were (Augmentor): rotated by ``angle`` degrees, cropped to the largest upright
    square inside, resized back, then optionally flipped or turned."""
    w = img.size[0]
    t = np.deg2rad(abs(angle))
    side = w / (np.cos(t) + np.sin(t))
    o = (w - side) / 2
    out = img.rotate(angle, resample=Image.BICUBIC).crop((round(o), round(o), round(o + side), round(o + side)))
    out = out.resize((w, w), Image.BICUBIC)
    return out.transpose(then) if then is not None else out


def sample(shared_data: Path) -> list[str]:
    return sorted(p.relative_to(shared_data / LUNG).as_posix() for p in (shared_data / LUNG).glob("*/*.jpeg"))


def test_canonical_hash_is_invariant_to_rotations_and_flips(shared_data):
    paths = sample(shared_data)
    assert len(paths) == 600
    hashes = {}
    for i, p in enumerate(paths):
        with Image.open(shared_data / LUNG / p) as img:
            img = img.convert("RGB")
            hashes[p] = grouping.canonical_hash(img)
            if i % 15 == 0:  # 40 images, each turned and flipped 7 ways (exactly: no re-encoding)
                assert {grouping.canonical_hash(img.transpose(t)) for t in DIHEDRAL} == {hashes[p]}, p
                odd = img.crop((3, 5, 201, 180))  # not square, odd size
                assert {grouping.canonical_hash(odd.transpose(t)) for t in DIHEDRAL} == {grouping.canonical_hash(odd)}
    assert len(set(hashes.values())) == 600  # distinct images, distinct hashes


def test_rotated_and_flipped_copies_land_in_their_source_group(tmp_path, shared_data, fresh_cache):
    base = tmp_path / "lung"
    shutil.copytree(shared_data / LUNG, base)
    paths = sample(shared_data)
    copies = {}
    ops = {"r90": lambda im: im.transpose(T.ROTATE_90), "r180": lambda im: im.transpose(T.ROTATE_180),
           "flip": lambda im: im.transpose(T.FLIP_LEFT_RIGHT), "transpose": lambda im: im.transpose(T.TRANSPOSE),
           "rot7": lambda im: augment(im, 7), "rot-15-flip": lambda im: augment(im, -15, T.FLIP_LEFT_RIGHT),
           "rot25-vflip": lambda im: augment(im, 25, T.FLIP_TOP_BOTTOM), "rot-25": lambda im: augment(im, -25),
           "rot12-r90": lambda im: augment(im, 12, T.ROTATE_90)}
    for source in paths[7::60]:  # 10 sources, every class
        with Image.open(base / source) as img:
            img = img.convert("RGB")
            for name, op in ops.items():
                copy = f"{source[:-len('.jpeg')]}-{name}.jpeg"
                op(img).save(base / copy, quality=90)  # re-encoded, as the dataset's JPEGs are
                copies[copy] = source
    got = grouping.near_duplicate_groups(base, paths + list(copies))
    assert len(copies) == 90 and [c for c, s in copies.items() if got[c] != got[s]] == []
    assert sorted(fresh_cache.glob("datasets/near-duplicates-*.json"))  # cached


#: pairs of the real sample that are copies of one original (checked by eye): flipped ones and ones rotated by
#: a small angle and zoomed, which a hash over the 8 dihedral transforms alone does not match
TWINS = [("lung_n/lungn2029.jpeg", "lung_n/lungn47.jpeg"), ("lung_scc/lungscc1578.jpeg", "lung_scc/lungscc2403.jpeg"),
         ("lung_n/lungn2803.jpeg", "lung_n/lungn3885.jpeg"), ("lung_aca/lungaca1106.jpeg", "lung_aca/lungaca1929.jpeg"),
         ("lung_aca/lungaca1197.jpeg", "lung_aca/lungaca3407.jpeg"), ("lung_aca/lungaca1214.jpeg", "lung_aca/lungaca237.jpeg"),
         ("lung_n/lungn1432.jpeg", "lung_n/lungn2524.jpeg"), ("lung_n/lungn2692.jpeg", "lung_n/lungn3104.jpeg"),
         ("lung_scc/lungscc3425.jpeg", "lung_scc/lungscc4601.jpeg")]


def test_lc25000_groups_on_the_real_sample_never_mix_classes(shared_data, fresh_cache, monkeypatch):
    paths = sample(shared_data)
    # across classes at once (the loader groups within each class folder): a group mixing classes would be unsound
    across = grouping.near_duplicate_groups(shared_data / LUNG, paths)
    classes: dict[str, set[str]] = {}
    for p, g in across.items():
        classes.setdefault(g, set()).add(p.split("/")[0])
    assert [g for g, c in classes.items() if len(c) > 1] == []
    cross = [(a, b) for a, b in combinations(paths, 2) if a.split("/")[0] != b.split("/")[0]]
    assert sum(across[a] == across[b] for a, b in cross) / len(cross) < 0.001  # in fact none of 120,000
    assert all(across[a] == across[b] for a, b in TWINS)
    n = len(set(across.values()))
    assert 420 <= n <= 560, n  # 479: 200 a class drawn from ~20 copies of 250 originals leave many twins
    assert max(Counter(across.values()).values()) <= 10

    m = plugins.get("dataset", "lc25000-lung").manifest(shared_data)
    got = {p: x["group"] for p, x in zip(m.paths, m.meta)}
    assert set(got) == set(paths) and all(got.values())
    assert all(g.split("/")[0] == p.split("/")[0] for p, g in got.items())  # named by a member of its class
    assert len(set(got.values())) == n and all(got[a] == got[b] for a, b in TWINS)

    def no_reading(path):
        raise AssertionError(f"{path} read again: the groups should come from the cache")

    monkeypatch.setattr(grouping, "load", no_reading)
    assert plugins.get("dataset", "lc25000-lung").manifest(shared_data).meta == m.meta


def test_an_oversized_group_is_split_with_a_stricter_threshold(monkeypatch):
    # 200 images chained by weak matches (20 bits), paired by strong ones (4 bits): the chain is chance
    weak = [(i, i + 1, 20) for i in range(199)]
    strong = [(2 * i, 2 * i + 1, 4) for i in range(100)]
    monkeypatch.setattr(grouping, "hashes", lambda reduced: (None, None))
    monkeypatch.setattr(grouping, "near_pairs", lambda ident, variants, threshold: weak + strong)
    first = grouping.group_images(np.zeros((200, 2, 32, 32)))
    assert first == [i - i % 2 for i in range(200)]
    monkeypatch.setattr(grouping, "near_pairs", lambda ident, variants, threshold: weak[:30] + strong)
    first = grouping.group_images(np.zeros((200, 2, 32, 32)))  # a chain of 32 is not oversized: kept
    assert first[:32] == [0] * 32 and len(set(first)) == 1 + 84

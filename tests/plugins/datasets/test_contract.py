"""The dataset contract (:func:`pathboard.testing.check_dataset`) holds for every registered dataset, each on
a fixture in its official layout; every loader declares its card, access and prompts."""
from __future__ import annotations

import pytest
from support.helpers import mirror
from support.layouts import (
    dataset,
    gdc_slide,
    image,
    write_arch,
    write_bach,
    write_brca_labels,
    write_gtex,
    write_pannuke,
    write_sicapv2,
    write_skin,
    write_tcga,
    write_tcga_ot,
    write_tils,
    write_tissuenet,
    write_wsss4luad,
)

from pathboard.core.engine import plugins
from pathboard.testing import applicable_tasks, check_dataset


def svs(shared):
    return shared / "slides" / "CMU-1-Small-Region.svs"


def files(root, *paths):
    """Small random images at ``paths`` under ``root``; returns ``root``."""
    for path in paths:
        image(root / path)
    return root


def write_nsclc(root, real_svs):
    """TCGA/TCGA-{LUAD,LUSC}/<file_id>/TCGA-*-DX1.<uuid>.svs, as gdc-client downloads them."""
    gdc_slide(root / "TCGA" / "TCGA-LUAD", "TCGA-05-4244-01Z-00-DX1", real_svs)
    gdc_slide(root / "TCGA" / "TCGA-LUSC", "TCGA-18-3406-01Z-00-DX1", real_svs)
    return root


FIXTURES = {
    "arch-books": lambda t, s: write_arch(t, s) or t,
    "arch-pubmed": lambda t, s: write_arch(t, s) or t,
    "bach": lambda t, s: write_bach(t) and t,
    "bach-wsi": lambda t, s: write_bach(t) and t,
    "bracs": lambda t, s: files(t, *(f"BRACS_RoI/latest_version/{split}/{cls}/BRACS_1_{cls[2:]}_{i}.png"
                                     for i, (split, cls) in enumerate([("train", "0_N"), ("train", "6_IC"),
                                                                       ("val", "3_FEA"), ("test", "4_ADH")]))),
    "camelyon16": "camelyon",
    "crc-msi": lambda t, s: files(t, "CRC_DX_TEST/MSS/blk-AAA-TCGA-A6-2671-01Z-00-DX1.png",
                                  "CRC_DX_TEST/MSIMUT/blk-BBB-TCGA-AA-3966-01Z-00-DX1.png",
                                  "CRC_DX_TRAIN/MSS/blk-DDD-TCGA-A6-6650-01Z-00-DX1.png"),
    "crc-val-he-7k": lambda t, s: s,
    "dhmc-luad": "dhmc",
    "digestpath": lambda t, s: files(t, *(f"Colonoscopy_tissue_segment_dataset/{name}.jpg" for name in [
        "tissue-train-pos-v1/18-04842A-lv1-34048-14024-2912-4000",
        "tissue-train-pos-v1/18-04842A-lv1-34048-14024-2912-4000_mask",  # its lesion mask, not an item
        "tissue-train-neg/2018_64982_1-3-lv0-34297-59778-2037-1445"])),
    "ebrains": "atlas",
    "ebrains-rare30": "atlas",
    "gtex-cervix": lambda t, s: write_gtex(t, svs(s)),
    "lc25000-colon": lambda t, s: files(t, "lung_colon_image_set/colon_image_sets/colon_aca/colonca1.jpeg",
                                        "lung_colon_image_set/colon_image_sets/colon_n/colonn1.jpeg"),
    "lc25000-lung": lambda t, s: s,
    "nct-crc-he-100k": lambda t, s: mirror(s / "CRC-VAL-HE-7K", t / "NCT-CRC-HE-100K").parent,
    "pannuke": lambda t, s: write_pannuke(t),
    "pannuke-cervix": lambda t, s: write_pannuke(t),
    "pannuke-cervix-nuclei": lambda t, s: write_pannuke(t),
    "renalcell": lambda t, s: files(t, "tissue_classification/cancer/TCGA-AK-3458_40707_15820_cancer_5163.png",
                                    "tissue_classification/blood/TCGA-EU-5906_18024_35798_blood_189.png"),
    "renalcell-lymph": lambda t, s: files(t, "binary_lymphocytes/immune/TCGA-B0-5077.svs_Immune cellsTile 970.png",
                                          "binary_lymphocytes/tumor/TCGA-G6-A8L6.svs_Immune cellsTile 37.png"),
    "sicapv2": lambda t, s: write_sicapv2(t) and t,
    "skincancer": lambda t, s: write_skin(t) and t,
    "tcga-brca": lambda t, s: write_brca_labels(*write_tcga(t, svs(s))) or t,
    "tcga-cesc": lambda t, s: write_tcga(t, svs(s))[0],
    "tcga-nsclc": lambda t, s: write_nsclc(t, svs(s)),
    "tcga-ot": lambda t, s: write_tcga_ot(t, svs(s)) and t,
    "tcga-rcc": lambda t, s: write_tcga(t, svs(s))[0],
    "tcga-tils": lambda t, s: write_tils(t),
    "tcga-tils-cervix": lambda t, s: write_tils(t),
    "tissuenet": lambda t, s: write_tissuenet(t),
    "wsss4luad": lambda t, s: write_wsss4luad(t) and t,
}


@pytest.mark.parametrize("dataset_id", sorted(plugins.registry("dataset")))
def test_every_registered_dataset_meets_the_contract_on_its_fixture(dataset_id, tmp_path, shared_data, request):
    assert dataset_id in FIXTURES, f"{dataset_id} has no fixture in the official layout: add one to FIXTURES"
    make = FIXTURES[dataset_id]
    root = request.getfixturevalue(make) if isinstance(make, str) else make(tmp_path, shared_data)
    check_dataset(plugins.get("dataset", dataset_id), root)


@pytest.mark.parametrize("dataset_id", ["camelyon16", "dhmc-luad", "ebrains", "ebrains-rare30"])
def test_registered_slide_datasets_declare_access_and_prompts(dataset_id):
    ds = plugins.get("dataset", dataset_id)
    assert ds.level == "wsi" and "zeroshot-wsi" in applicable_tasks(ds) and ds.tags["stain"] == "H&E"
    assert ds.access and not ds.downloads and ds.url.startswith("http") and ds.expected_files
    prompts = ds.prompts()
    single = prompts.prompts("single", ds.classes)
    assert list(single) == ds.classes and all(len(v) == 1 for v in single.values())
    assert len(prompts.templates) == 22 and prompts.source


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

"""The dataset contract (:func:`pathboard.testing.check_dataset`) holds for every registered dataset.

Each registered id needs a fixture in its official layout: here a writer from the dataset's own test module
(or a pytest fixture of it, named by a string), the real samples in ``../shared/data``, or, where that
module builds its files inline, a minimal writer below. A new dataset without an entry in ``FIXTURES``
fails, so a plugin cannot be registered without one. The contract: the card is well-formed (level, facts,
opt-outs, a source), the manifest is non-empty, stable, unique and not ragged, labels lie in range, prompts
cover the classes, splits are declared, every item exists and the first patches open as RGB.
"""
import pytest
from helpers import mirror
from test_datasets_cervix import (
    gdc_slide,
    write_brca_labels,
    write_gtex,
    write_pannuke,
    write_tcga,
    write_tils,
    write_tissuenet,
)
from test_datasets_general import image, write_bach, write_sicapv2, write_skin, write_wsss4luad
from test_datasets_wsi import atlas, camelyon, dhmc  # noqa: F401  (pytest fixtures, used by name)
from test_retrieval import write_arch

from pathboard.core.engine import plugins
from pathboard.testing import check_dataset


def svs(shared):
    return shared / "slides" / "CMU-1-Small-Region.svs"


def files(root, *paths):
    """Small random images at ``paths`` under ``root``; returns ``root``."""
    for path in paths:
        image(root / path)
    return root


# --- minimal writers for datasets whose tests build their fixture inline ---------------------------------

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

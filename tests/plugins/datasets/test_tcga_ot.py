"""TCGA-OT from a GDC layout: TITAN's official labels and splits, shipped as data, joined by slide barcode."""
from support.layouts import TCGA_OT_LISTED, TCGA_OT_NOT_LISTED, gdc_slide, get, one_line_error, write_tcga_ot

from pathboard.api import evaluated_items, official_split
from pathboard.plugins.datasets.tcga_slides import split_table

LISTED, NOT_LISTED = TCGA_OT_LISTED, TCGA_OT_NOT_LISTED

def test_the_official_splits_and_labels(tmp_path, shared_data):
    slides = write_tcga_ot(tmp_path, shared_data / "slides" / "CMU-1-Small-Region.svs")
    dataset = get("tcga-ot")
    assert len(dataset.classes) == 46 and len(split_table()) == 11186
    manifest = dataset.manifest(tmp_path)
    found = {p.split("/")[-1].split(".")[0]: (dataset.classes[label], split)
             for p, label, split in zip(manifest.paths, manifest.labels, manifest.splits)}
    assert found == {barcode: (code, split) for barcode, _, code, split in slides}  # the unlisted slide is left out
    evaluated = [manifest.paths[i].split("/")[-1][:23] for i in evaluated_items(dataset, manifest).nonzero()[0]]
    assert sorted(evaluated) == sorted(b for b, *_ in LISTED)
    train, tested, dropped = official_split(dataset, manifest)
    assert train.sum() == 1 and tested.sum() == 2 and dropped == 0
    assert {m["group"] for m in manifest.meta} == {b[:12] for b, *_ in slides}
    single = dataset.prompts().prompts("single", dataset.classes)
    assert single["CESC"] == ["squamous cell carcinoma of the cervix."]  # TITAN's prompts, TITAN's first template


def test_no_tcga_ot_slide_is_one_line(tmp_path, shared_data):
    gdc_slide(tmp_path / "TCGA" / NOT_LISTED[1], NOT_LISTED[0], shared_data / "slides" / "CMU-1-Small-Region.svs")
    line = one_line_error(get("tcga-ot"), tmp_path)
    assert "none of the 11,186 TCGA-OT slides is under" in line

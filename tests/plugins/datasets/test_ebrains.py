"""EBRAINS: every diagnosis, the rare-30 classes and split, and wrong layouts, from its official layout."""
from pathlib import Path

import pytest
from support.layouts import (
    ASTROBLASTOMA,
    CONTROL,
    EBRAINS_HEADER,
    EBRAINS_ROWS,
    OLIGO,
    OTHER_GBM,
    TEST_GBM,
    one_line,
    placeholder,
    write_csv,
)

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError
from pathboard.plugins.datasets import ebrains as ebrains_mod
from pathboard.plugins.datasets._ebrains_split import rare30_test_uuids


def test_ebrains_all_diagnoses(atlas):
    ds = plugins.get("dataset", "ebrains")
    assert len(ds.classes) == 126 == len(set(ds.classes)) and ds.tags["organ"] == "brain" and ds.eval_split is None
    m = ds.manifest(atlas)
    by_uuid = {Path(p).stem: (p, label, meta) for p, label, meta in zip(m.paths, m.labels, m.meta)}
    assert set(by_uuid) == {TEST_GBM, OTHER_GBM, OLIGO, ASTROBLASTOMA, CONTROL}  # MISSING is not on disk
    path, label, meta = by_uuid[OLIGO]
    assert path == f"v1.0/Oligodendroglioma, IDH-mutant and 1p-19q codeleted/{OLIGO}.ndpi"
    assert ds.classes[label] == "Oligodendroglioma, IDH-mutant and 1p/19q codeleted"
    assert meta["pat_id"] == "patient_3" and meta["grade"] == "II"
    assert ds.classes[by_uuid[ASTROBLASTOMA][1]] == "Astroblastoma"
    assert by_uuid[CONTROL][1] == -1 and by_uuid[CONTROL][2]["control"] == "1"
    assert set(m.splits) == {None}

    assert ds.manifest(atlas).hash == m.hash
    rows = [r if r[0] != OTHER_GBM else (OTHER_GBM, "patient_2", "Gliosarcoma", "", "IV", "0") for r in EBRAINS_ROWS]
    write_csv(atlas / "DigitalBrainTumourAtlas/v1.0/annotation.csv", EBRAINS_HEADER, rows)
    assert ds.manifest(atlas).hash != m.hash


def test_ebrains_rare30_classes_and_split(atlas):
    ds = plugins.get("dataset", "ebrains-rare30")
    assert len(ds.classes) == 30 and set(ds.classes) <= set(ebrains_mod.CLASSES)
    assert {"Glioblastoma, IDH-wildtype", "Haemangiopericytoma", "Medulloblastoma, non-WNT/non-SHH"} <= set(ds.classes)
    assert ds.splits == ("trainval", "test") and ds.eval_split == "test" and ds.expected_files == 2319
    uuids = rare30_test_uuids()
    assert len(uuids) == 573 and TEST_GBM in uuids and OTHER_GBM not in uuids
    m = ds.manifest(atlas)  # the astroblastoma and the control slide are not in the 30 classes
    got = {Path(p).stem: (ds.classes[label], split) for p, label, split in zip(m.paths, m.labels, m.splits)}
    assert got == {TEST_GBM: ("Glioblastoma, IDH-wildtype", "test"),
                   OTHER_GBM: ("Glioblastoma, IDH-wildtype", "trainval"),
                   OLIGO: ("Oligodendroglioma, IDH-mutant and 1p/19q codeleted", "trainval")}


def test_ebrains_wrong_layouts(tmp_path):
    ds = plugins.get("dataset", "ebrains")
    base = tmp_path / "DigitalBrainTumourAtlas"
    placeholder(base / "Glioblastoma, IDH-wildtype" / f"{TEST_GBM}.ndpi")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    text = one_line(exc)
    assert f"{base / 'annotation.csv'} not found" in text and "found Glioblastoma, IDH-wildtype" in text
    write_csv(base / "annotation.csv", ["uuid", "diagnosis"], [(TEST_GBM, "Glioblastoma multiforme, NOS")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "'Glioblastoma multiforme, NOS', not one of the atlas's 126 diagnoses" in one_line(exc)
    write_csv(base / "annotation.csv", ["slide", "label"], [(TEST_GBM, "Glioblastoma, IDH-wildtype")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "expected uuid and diagnosis" in one_line(exc)
    write_csv(base / "annotation.csv", ["uuid", "diagnosis"], [(OLIGO, "Glioblastoma, IDH-wildtype")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "none of the 1 slides listed" in one_line(exc)

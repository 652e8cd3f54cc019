"""Fixtures of the slide datasets in their official layouts, for the dataset and task tests."""
import zipfile
from pathlib import Path

import pytest
from support.layouts import (
    ASTROBLASTOMA,
    CONTROL,
    DHMC_ROWS,
    EBRAINS_HEADER,
    EBRAINS_ROWS,
    OLIGO,
    OTHER_GBM,
    TEST_GBM,
    asap_xml,
    placeholder,
    pyramid_tif,
    write_csv,
)

TUMOR_001 = [("Annotation 0", "_0", [(0, "61735.5", "100246.25"), (1, "61800", "100300.75"), (2, "61700.125", "100400")]),
             ("Annotation 1", "_1", [(2, "70000", "90000.5"), (0, "70100", "90000"), (1, "70100", "90100")]),
             ("Annotation 2", "_2", [(0, "61740", "100260"), (1, "61760", "100280"), (2, "61750", "100290")])]


@pytest.fixture()
def camelyon(tmp_path) -> Path:
    base = tmp_path / "data" / "CAMELYON16"
    pyramid_tif(base / "training/normal/normal_001.tif", seed=1)
    pyramid_tif(base / "training/normal/normal_002.tif", seed=2)
    pyramid_tif(base / "training/tumor/tumor_001.tif", seed=3)
    pyramid_tif(base / "testing/images/test_001.tif", seed=4)
    pyramid_tif(base / "testing/images/test_002.tif", seed=5)
    (base / "training/lesion_annotations").mkdir(parents=True)
    (base / "training/lesion_annotations/tumor_001.xml").write_text(asap_xml(TUMOR_001))
    (base / "testing/reference.csv").write_text("Test_001,Tumor,Macro,\nTest_002,Normal,None,\n")
    with zipfile.ZipFile(base / "testing/lesion_annotations.zip", "w") as zf:  # as shipped: zipped
        zf.writestr("test_001.xml", asap_xml([("Annotation 0", "Tumor", [(0, "10", "20"), (1, "30,5", "40"), (2, "50", "60")])]))
    (base / "training/normal/readme.txt").write_text("not a slide")
    return tmp_path / "data"


@pytest.fixture()
def dhmc(tmp_path) -> Path:
    base = tmp_path / "DartmouthLungCancerHistologyDataset"
    write_csv(base / "MetaData_Release_1.0.csv", ["File Name", "Class"], DHMC_ROWS)
    for name, _ in DHMC_ROWS[:4]:
        placeholder(base / name)
    placeholder(base / "more" / "DHMC_0005.tif")  # slides in a sub-folder are found too
    return tmp_path  # DHMC_0006 is listed but absent: a partial copy


@pytest.fixture()
def atlas(tmp_path) -> Path:
    version = tmp_path / "DigitalBrainTumourAtlas" / "v1.0"
    write_csv(version / "annotation.csv", EBRAINS_HEADER, EBRAINS_ROWS)
    placeholder(version / "Glioblastoma, IDH-wildtype" / f"{TEST_GBM}.ndpi", b"1")
    placeholder(version / "Glioblastoma, IDH-wildtype" / f"{OTHER_GBM}.ndpi", b"22")
    placeholder(version / "Oligodendroglioma, IDH-mutant and 1p-19q codeleted" / f"{OLIGO}.ndpi", b"333")
    placeholder(version / "Astroblastoma" / f"{ASTROBLASTOMA}.ndpi", b"4444")
    placeholder(version / "Control" / f"{CONTROL}.ndpi", b"55555")
    return tmp_path

"""CAMELYON16: labels, splits, slides, ASAP annotations and segmentation truth from its official layout."""
import zipfile

import numpy as np
import openslide
import pytest
from support.layouts import asap_xml, one_line, placeholder

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError
from pathboard.core.interfaces.dataset import Annotation
from pathboard.core.media.masks import IGNORE
from pathboard.plugins.datasets.camelyon16 import parse_asap_xml
from pathboard.testing import applicable_tasks


def test_camelyon16_truth_from_asap_polygons(tmp_path):
    ds = plugins.get("dataset", "camelyon16")
    base = tmp_path / ds.folder
    for path in ("training/tumor/tumor_001.tif", "training/tumor/tumor_002.tif", "training/normal/normal_001.tif",
                 "testing/images/test_001.tif", "testing/images/test_002.tif"):
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_bytes(b"slide")  # the truth reads annotations only
    (base / "training/lesion_annotations").mkdir()
    (base / "training/lesion_annotations/tumor_001.xml").write_text(asap_xml([
        ("Annotation 0", "_0", [(0, "1000", "1000"), (1, "5000", "1000"), (2, "5000", "4000"), (3, "1000", "4000")]),
        ("Annotation 1", "_2", [(0, "3000", "2000"), (1, "5000", "2000"), (2, "5000", "4000"), (3, "3000", "4000")]),
        ("Annotation 2", "_1", [(0, "6000,5", "0"), (1, "8000", "0"), (2, "8000", "1000"), (3, "6000", "1000")]),
    ]))
    (base / "testing/reference.csv").write_text("Test_001,Tumor,Micro,\nTest_002,Normal,None,\n")
    with zipfile.ZipFile(base / "testing/lesion_annotations.zip", "w") as zf:
        zf.writestr("test_001.xml", asap_xml([("A", "Tumor", [(0, 0, 0), (1, 2000, 0), (2, 2000, 2000), (3, 0, 2000)])]))

    truth = ds.segmentation_truth(base, "training/tumor/tumor_001.tif", (5, 9), 1000)
    expected = np.zeros((5, 9), int)
    expected[1:4, 1:5] = 1  # tumor
    expected[2:4, 3:5] = IGNORE  # normal tissue inside the outline (group _2)
    expected[0, 6:8] = 1  # a second metastasis (group _1)
    assert truth.tolist() == expected.tolist()
    test = ds.segmentation_truth(base, "testing/images/test_001.tif", (3, 3), 1000)
    assert test.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]  # from the zipped test annotations
    assert (ds.segmentation_truth(base, "training/normal/normal_001.tif", (3, 3), 1000) == 0).all()
    assert (ds.segmentation_truth(base, "testing/images/test_002.tif", (3, 3), 1000) == 0).all()
    with pytest.raises(DatasetNotFoundError, match="tumor_002.tif is a tumor slide but has no lesion annotation"):
        ds.segmentation_truth(base, "training/tumor/tumor_002.tif", (3, 3), 1000)
    (base / "testing/reference.csv").write_text("Test_001,Tumor,Micro,\nTest_002,Tumor,Macro,\n")
    with pytest.raises(DatasetNotFoundError, match="test_002.tif is a tumor slide"):
        ds.segmentation_truth(base, "testing/images/test_002.tif", (3, 3), 1000)


def test_camelyon16_labels_splits_slides_and_annotations(camelyon):
    ds = plugins.get("dataset", "camelyon16")
    assert ds.classes == ["normal", "tumor"] and ds.level == "wsi" and ds.eval_split == "test"
    assert applicable_tasks(ds) == {"zeroshot-wsi", "fewshot-wsi", "segmentation", "prompt-sensitivity",
                                  "slide-retrieval"} and ds.tags["group"] == "general" \
        and not ds.ordinal
    m = ds.manifest(camelyon)
    assert m.paths == ["testing/images/test_001.tif", "testing/images/test_002.tif", "training/normal/normal_001.tif",
                       "training/normal/normal_002.tif", "training/tumor/tumor_001.tif"]
    assert m.labels.tolist() == [1, 0, 0, 0, 1]
    assert m.splits == ["test", "test", "train", "train", "train"]
    assert m.meta[0] == {"metastasis": "Macro", "group": "test_001"} and m.meta[2] == {"group": "normal_001"}
    for path in m.paths:  # real pyramidal slides that openslide reads
        slide = openslide.OpenSlide(str(m.root / path))
        assert slide.level_count == 3 and slide.dimensions == (512, 384)
        slide.close()

    tumor = ds.annotations(m.root, "training/tumor/tumor_001.tif")
    assert tumor == [
        Annotation("tumor", ((61735.5, 100246.25), (61800.0, 100300.75), (61700.125, 100400.0))),
        Annotation("tumor", ((70100.0, 90000.0), (70100.0, 90100.0), (70000.0, 90000.5))),  # sorted by Order
        Annotation("exclusion", ((61740.0, 100260.0), (61760.0, 100280.0), (61750.0, 100290.0))),
    ]
    assert ds.annotations(m.root, "testing/images/test_001.tif") == [
        Annotation("tumor", ((10.0, 20.0), (30.5, 40.0), (50.0, 60.0)))]  # read from the zip; decimal comma
    assert ds.annotations(m.root, "training/normal/normal_001.tif") == []

    assert ds.manifest(camelyon).hash == m.hash
    (m.root / "testing/reference.csv").write_text("Test_001,Tumor,Macro,\nTest_002,Tumor,Micro,\n")
    changed = ds.manifest(camelyon)
    assert changed.labels.tolist() == [1, 1, 0, 0, 1] and changed.hash != m.hash


def test_camelyon16_wrong_layouts_say_what_is_expected_and_found(tmp_path):
    ds = plugins.get("dataset", "camelyon16")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert str(tmp_path / "CAMELYON16") in one_line(exc)
    placeholder(tmp_path / "CAMELYON16/images/normal_001.tif")  # the flat AWS mirror layout
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    text = one_line(exc)
    assert "training/normal" in text and "found images" in text
    placeholder(tmp_path / "CAMELYON16/testing/images/test_001.tif")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "testing/reference.csv not found" in one_line(exc)


def test_asap_parser_keeps_unknown_groups():
    xml = asap_xml([("a", "metastases", [(0, 1, 2)]), ("b", "Exclusion", [(0, 3, 4)]), ("c", "Custom", [(0, 5, 6)])])
    assert [a.label for a in parse_asap_xml(xml)] == ["tumor", "exclusion", "Custom"]

"""TissueNet: labels, metadata and lesion annotations from its official layout."""
import openslide
from support.layouts import TISSUENET, get, one_line_error, same_times, write_tissuenet


def test_tissuenet_labels_metadata_annotations(tmp_path):
    root = write_tissuenet(tmp_path / "a", suffix="_eRORy1H")  # DrivenData's suffixed CSV names
    ds = get("tissuenet")
    m = ds.manifest(root)
    assert ds.level == "wsi" and ds.ordinal and ds.classes == ["benign", "LSIL", "HSIL", "invasive"]
    # C03_B005_S01 is listed but not downloaded: a partial copy holds the slides present
    assert m.paths == ["train/C01_B001_S01.tif", "train/C01_B002_S01.tif", "train/C02_B003_S01.tif",
                       "train/C02_B004_S01.tif"]
    assert m.labels.tolist() == [0, 1, 2, 3] and set(m.splits) == {"train"}
    assert m.meta[0] == {"case": "C01", "width": "64", "height": "64", "resolution": "0.25", "magnification": "40",
                         "group": "C01"}
    anns = ds.annotations(m.root, "train/C02_B003_S01.tif")
    assert [a.label for a in anns] == ["HSIL", "LSIL"]
    assert anns[0].polygon == ((10.0, 10.0), (40.0, 10.0), (40.0, 30.0), (10.0, 10.0))
    assert anns[1].polygon[0] == (1.0, 1.0) and len(anns[1].polygon) == 4  # the hole is dropped
    assert [a.label for a in ds.annotations(m.root, "train/C02_B004_S01.tif")] == ["invasive", "invasive"]
    assert ds.annotations(m.root, "train/C01_B001_S01.tif") == []
    with openslide.OpenSlide(str(m.root / m.paths[0])) as slide:  # the fixture is a real pyramidal TIFF
        assert slide.level_count == 2 and slide.dimensions == (64, 64)
    # same files, unsuffixed CSV names, slides beside the CSVs: same hash; a relabelled slide: another
    other = write_tissuenet(tmp_path / "b")
    assert same_times(ds, m, other).hash == m.hash
    relabelled = write_tissuenet(tmp_path / "c", {**TISSUENET, "C01_B002_S01.tif": 2})
    assert ds.manifest(relabelled).hash != m.hash


def test_tissuenet_wrong_layouts(tmp_path):
    root = write_tissuenet(tmp_path / "a")
    (root / "tissuenet" / "train_labels.csv").unlink()
    msg = one_line_error(get("tissuenet"), root)
    assert f"{root}/tissuenet/train_labels.csv not found" in msg and "train_annotations.csv" in msg
    bad = write_tissuenet(tmp_path / "b")
    (bad / "tissuenet" / "train_labels.csv").write_text("filename,label\nC01_B001_S01.tif,0\n")
    msg = one_line_error(get("tissuenet"), bad)
    assert "lacks column(s) 0, 1, 2, 3" in msg

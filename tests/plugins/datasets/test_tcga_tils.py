"""TCGA TILs (cervix): layout, labels, splits and manifest hash."""
import numpy as np
from support.layouts import get, one_line_error, same_times, write_tils


def test_tcga_tils_layout_labels_splits_and_hash(tmp_path):
    root = write_tils(tmp_path / "a")
    m = get("tcga-tils").manifest(root)
    assert len(m) == 13  # the pooled pancancer/ copies are not counted again
    assert not any("pancancer" in p for p in m.paths)
    assert {x["study"] for x in m.meta} == {"cesc", "luad"}
    cervix = get("tcga-tils-cervix").manifest(root)
    assert len(cervix) == 10 and {x["study"] for x in cervix.meta} == {"cesc"}
    assert get("tcga-tils-cervix").classes == ["til-negative", "til-positive"]
    by_split = {s: np.bincount(cervix.labels[[x == s for x in cervix.splits]], minlength=2).tolist()
                for s in ("train", "val", "test")}
    assert by_split == {"train": [2, 1], "val": [1, 1], "test": [3, 2]}
    i = cervix.paths.index(next(p for p in cervix.paths if "/test/til-positive/" in p))
    assert cervix.labels[i] == 1 and cervix.splits[i] == "test"
    assert get("tcga-tils-cervix").eval_split == "test"
    # the same files elsewhere hash the same; a patch moved to the other class does not
    assert same_times(get("tcga-tils-cervix"), cervix, write_tils(tmp_path / "b")).hash == cervix.hash
    src = root / "TCGA-TILs" / cervix.paths[0]
    src.rename(src.parent.parent / "til-positive" / src.name)
    assert get("tcga-tils-cervix").manifest(root).hash != cervix.hash


def test_tcga_tils_wrong_layouts_name_the_expected_path(tmp_path):
    nested = tmp_path / "nested"
    write_tils(nested / "TCGA-TILs")  # extracted one level too deep
    msg = one_line_error(get("tcga-tils"), nested)
    assert f"{nested}/TCGA-TILs/images-tcga-tils not found" in msg and "found TCGA-TILs" in msg
    no_cesc = write_tils(tmp_path / "luad", {"luad": {"test": (1, 1)}})
    msg = one_line_error(get("tcga-tils-cervix"), no_cesc)
    assert f"expected study folder {no_cesc}/TCGA-TILs/images-tcga-tils/cesc" in msg and "found luad" in msg

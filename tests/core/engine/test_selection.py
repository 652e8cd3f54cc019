"""What ``--datasets`` names: parameterised ids (``folder:``, ``slides-csv:``) refuse bad input in one line."""
import pytest
from support.layouts import one_line, placeholder, write_csv

from pathboard.core.engine.selection import dataset_from_spec, select
from pathboard.core.errors import DatasetNotFoundError, PathboardError


def test_specs_reject_bad_input_in_one_line(tmp_path):
    assert dataset_from_spec("crc-val-he-7k") is None and dataset_from_spec("general") is None
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"folder:{tmp_path / 'nope'}")
    assert "is not a directory" in one_line(exc)
    placeholder(tmp_path / "flat" / "a.png")
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"folder:{tmp_path / 'flat'}")
    assert "expected one sub-folder per class" in one_line(exc) and "found a.png" in str(exc.value)
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"folder:{tmp_path / 'empty'}").manifest(None)
    assert "no items" in one_line(exc)
    write_csv(tmp_path / "bad.csv", ["path", "class"], [("a.svs", "x")])
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"slides-csv:{tmp_path / 'bad.csv'}")
    assert "expected the header slide_path,label[,split]; found path,class" in one_line(exc)
    write_csv(tmp_path / "missing.csv", ["slide_path", "label"], [("gone.svs", "x")])
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec(f"slides-csv:{tmp_path / 'missing.csv'}").manifest(None)
    assert f"e.g. {tmp_path / 'gone.svs'}" in one_line(exc)
    with pytest.raises(DatasetNotFoundError) as exc:
        dataset_from_spec("slides-csv:")
    assert "give a path" in one_line(exc)


def test_name_a_private_dataset(shared_data):
    crc = shared_data / "CRC-VAL-HE-7K"
    lung = shared_data / "lung_colon_image_set" / "lung_image_sets"
    sel = select("dataset", f"crc=folder:{crc},lung-private=folder:{lung}")
    assert [d.id for d in sel.items] == ["crc", "lung-private"] and sel.parameterised == {"crc", "lung-private"}
    assert sel.items[0].title == "CRC-VAL-HE-7K" and sel.items[0].classes[:2] == ["ADI", "DEB"]
    with pytest.raises(PathboardError, match="name a private dataset with letters"):
        select("dataset", f"crc-val-he-7k=folder:{crc}")  # a registered id
    with pytest.raises(PathboardError, match="name a private dataset with letters"):
        select("dataset", f"my set=folder:{crc}")

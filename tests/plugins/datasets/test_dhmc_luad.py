"""DHMC LUAD: labels and manifest hash from its official layout; wrong layouts in one line."""
import pytest
from support.layouts import DHMC_ROWS, one_line, placeholder, write_csv

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError


def test_dhmc_luad_labels_and_hash(dhmc):
    ds = plugins.get("dataset", "dhmc-luad")
    assert ds.classes == ["lepidic", "acinar", "papillary", "micropapillary", "solid"] and not ds.ordinal
    assert ds.headline_metric == "cohen_kappa" and ds.expected_files == 143 and ds.tags["organ"] == "lung"
    m = ds.manifest(dhmc)
    assert m.paths == ["DHMC_0001.tif", "DHMC_0002.tif", "DHMC_0003.tif", "DHMC_0004.tif", "more/DHMC_0005.tif"]
    assert [ds.classes[i] for i in m.labels] == ["solid", "lepidic", "acinar", "micropapillary", "papillary"]
    assert set(m.splits) == {"test"}
    assert ds.manifest(dhmc).hash == m.hash
    rows = [("DHMC_0001.tif", "acinar")] + DHMC_ROWS[1:]
    write_csv(dhmc / "DartmouthLungCancerHistologyDataset/MetaData_Release_1.0.csv", ["File Name", "Class"], rows)
    assert ds.manifest(dhmc).hash != m.hash


def test_dhmc_luad_wrong_layouts(tmp_path):
    ds = plugins.get("dataset", "dhmc-luad")
    base = tmp_path / "DartmouthLungCancerHistologyDataset"
    placeholder(base / "DHMC_0001.tif")
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    text = one_line(exc)
    assert "MetaData_Release_1.0.csv not found" in text and "found DHMC_0001.tif" in text
    write_csv(base / "MetaData_Release_1.0.csv", ["filename", "label"], [("DHMC_0001.tif", "solid")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "has columns filename, label; expected 'File Name' and 'Class'" in one_line(exc)
    write_csv(base / "MetaData_Release_1.0.csv", ["File Name", "Class"], [("DHMC_0001.tif", "cribriform")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "'cribriform'" in one_line(exc)
    write_csv(base / "MetaData_Release_1.0.csv", ["File Name", "Class"], [("DHMC_0099.tif", "solid")])
    with pytest.raises(DatasetNotFoundError) as exc:
        ds.manifest(tmp_path)
    assert "none of the 1 slides listed" in one_line(exc)

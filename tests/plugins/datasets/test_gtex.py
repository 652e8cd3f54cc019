"""GTEx cervix: ectocervix vs endocervix slides from the portal or sample-attribute tables."""
import pytest
from support.layouts import get, one_line_error, write_gtex

from pathboard.testing import applicable_tasks


@pytest.mark.parametrize("table", ["portal", "sample-attributes"])
def test_gtex_cervix_sites(tmp_path, shared_data, table):
    root = write_gtex(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs", table)
    m = get("gtex-cervix").manifest(root)
    assert m.paths == ["GTEX-1117F-0126.svs", "GTEX-1117F-0226.svs", "GTEX-111CU-0326.svs"]  # no uterus slide
    assert [x["site"] for x in m.meta] == ["Cervix - Ectocervix", "Cervix - Endocervix", "Cervix - Ectocervix"]
    assert m.labels.tolist() == [0, 1, 0] and get("gtex-cervix").classes == ["ectocervix", "endocervix"]
    assert [x["subject"] for x in m.meta] == ["GTEX-1117F", "GTEX-1117F", "GTEX-111CU"]  # the grouping of splits
    assert get("gtex-cervix").facts == {"slides", "labels"} and "zeroshot-wsi" in applicable_tasks(get("gtex-cervix"))
    assert get("gtex-cervix").prompts().classes.keys() == {"ectocervix", "endocervix"}
    (root / "GTEx" / "GTEX-111CU-0426.svs").rename(root / "GTEx" / "GTEX-111CU-0426.svs.bak")
    assert get("gtex-cervix").manifest(root).hash == m.hash
    (root / "GTEx" / "GTEX-1117F-0126.svs").unlink()
    assert get("gtex-cervix").manifest(root).hash != m.hash


def test_gtex_without_a_site_table(tmp_path, shared_data):
    root = write_gtex(tmp_path / "a", shared_data / "slides" / "CMU-1-Small-Region.svs")
    (root / "GTEx" / "GTEx Portal.csv").unlink()
    msg = one_line_error(get("gtex-cervix"), root)
    assert f"expected {root}/GTEx/GTEx Portal.csv" in msg and "GTEX-1117F-0126.svs" in msg

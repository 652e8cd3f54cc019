"""Image-caption datasets: ``pairs-csv:`` files (with ``--verify``) and the ARCH layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from support.layouts import write_arch

from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import DatasetNotFoundError
from pathboard.plugins.datasets.pairs import pairs_from_spec

METRICS = {f"{d}_recall@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)} | {"mean_recall"}


def test_pairs_csv_errors_are_one_line(tmp_path):
    assert pairs_from_spec("folder:/x") is None
    with pytest.raises(DatasetNotFoundError, match="give a path"):
        pairs_from_spec("pairs-csv:")
    with pytest.raises(DatasetNotFoundError, match="is not a file"):
        pairs_from_spec(f"pairs-csv:{tmp_path / 'none.csv'}")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,text\na.png,x\n")
    with pytest.raises(DatasetNotFoundError, match="expected the header image_path,caption"):
        pairs_from_spec(f"pairs-csv:{bad}").manifest(tmp_path)
    missing = tmp_path / "missing.csv"
    missing.write_text("image_path,caption\nnope.png,x\n")
    with pytest.raises(DatasetNotFoundError, match="1 of 1 image"):
        pairs_from_spec(f"pairs-csv:{missing}").manifest(tmp_path)


def test_arch_layout_loads_with_the_right_counts(tmp_path, shared_data, tiny_hub, fresh_cache):
    root = tmp_path / "data"
    write_arch(root, shared_data)
    books, pubmed = plugins.get("dataset", "arch-books"), plugins.get("dataset", "arch-pubmed")
    assert books.tags["group"] == "general" and books.tags["organ"] == "multi" and "general" in pubmed.groups
    m = books.manifest(root)
    assert m.paths == ["images/b-0.png", "images/b-1.png", "images/b-2.png", "images/b-3.png"]
    assert books.captions(m) == [["A, B, C: adenoma, three panels."]] * 3 + [["Mucinous carcinoma."]]
    assert m.meta[3]["letter"] == "Single" and m.meta[0]["figure_id"] == "00"
    p = pubmed.manifest(root)
    assert p.root == root / "ARCH" / "pubmed_set" and len(p) == 3
    assert pubmed.captions(p) == [["Lymphocytes."], ["Stroma."], ["Stroma.", "Stroma, again."]]
    # captions are part of the manifest: editing one changes the hash
    rows = json.loads((root / "books_set" / "captions.json").read_text())
    rows["3"]["caption"] = "Signet ring cells."
    (root / "books_set" / "captions.json").write_text(json.dumps(rows))
    assert books.manifest(root).hash != m.hash

    cfg = RunConfig(models="quiltnet-b32", datasets="arch-books,arch-pubmed", tasks="retrieval,zeroshot",
                    data_root=str(root), db=str(tmp_path / "pb.duckdb"), workers=0)
    p_ = plan(cfg)
    assert [c.prompt_mode for c in p_.cells] == [None, None]
    assert any("does not declare task zeroshot" in s for s in p_.skipped)
    cells = {c["dataset"]: c["metrics"] for c in execute(p_, cfg).cells}
    assert set(cells["arch-books"]) == METRICS
    assert cells["arch-books"]["i2t_recall@1"].n == 4 and cells["arch-books"]["t2i_recall@1"].n == 2
    assert cells["arch-pubmed"]["i2t_recall@1"].n == 3 and cells["arch-pubmed"]["t2i_recall@1"].n == 3
    assert cells["arch-books"]["t2i_recall@5"].value == 1.0  # 4 images: everything is in the top 5


RNG = np.random.default_rng(0)


def test_pairs_manifest_accepts_verify(tmp_path):
    from pathboard.plugins.datasets.pairs import pairs_csv_dataset

    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    (tmp_path / "pairs.csv").write_text("image_path,caption\ni.png,a caption\n")
    ds = pairs_csv_dataset(tmp_path / "pairs.csv")
    assert ds.manifest(None, verify=True).hash != ds.manifest(None).hash

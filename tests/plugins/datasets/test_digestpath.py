"""DigestPath: labels and lesion masks (segmentation truth) from its official layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.layouts import dataset, image, not_found, texture

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError, PathboardError
from pathboard.core.media.tiling import Tiling, open_slide, tile_grid
from pathboard.testing import applicable_tasks


def test_digestpath_truth_from_lesion_masks(tmp_path):
    ds = plugins.get("dataset", "digestpath")
    assert ds.mpp == 0.5
    base = tmp_path / ds.folder
    (base / "tissue-train-pos-v1").mkdir(parents=True)
    (base / "tissue-train-neg").mkdir()
    rng = np.random.default_rng(0)
    img = np.concatenate([texture("purple", (336, 224), rng), texture("pink", (336, 224), rng)], axis=1)
    Image.fromarray(img).save(base / "tissue-train-pos-v1/18-01.jpg", quality=90)
    mask = np.zeros((336, 448), np.uint8)
    mask[56:280, 112:224] = 255  # the lesion: rows 1-4, columns 2-3 of a 56 px grid
    mask[0:10, 400:448] = 255  # a sliver in cell (0, 7) stays benign (majority)
    Image.fromarray(mask).save(base / "tissue-train-pos-v1/18-01_mask.jpg", quality=75)  # lossy, as shipped
    Image.fromarray(img[:, ::-1]).save(base / "tissue-train-neg/19-02.jpg")
    Image.fromarray(img).save(base / "tissue-train-pos-v1/18-03.jpg")  # its mask is missing

    truth = ds.segmentation_truth(base, "tissue-train-pos-v1/18-01.jpg", (6, 8), 56)
    expected = np.zeros((6, 8), int)
    expected[1:5, 2:4] = 1  # malignant is class 1
    assert ds.classes.index("malignant") == 1
    assert truth.tolist() == expected.tolist()
    assert ds.segmentation_truth(base, "tissue-train-neg/19-02.jpg", (6, 8), 56).tolist() == np.zeros((6, 8)).tolist()
    with pytest.raises(DatasetNotFoundError, match="18-03_mask.jpg not found"):
        ds.segmentation_truth(base, "tissue-train-pos-v1/18-03.jpg", (6, 8), 56)

    # the JPEGs carry no resolution: they tile at the dataset's declared mpp, and only with it
    slide = open_slide(base / "tissue-train-pos-v1/18-01.jpg")
    with pytest.raises(PathboardError, match="no resolution metadata"):
        tile_grid(slide, Tiling(overlap=0.75))
    grid = tile_grid(slide, Tiling(overlap=0.75, fallback_mpp=ds.mpp))
    assert grid.slide_mpp == 0.5 and grid.mpp_source.startswith("dataset mpp") and grid.size0 == 224
    assert len(grid.coords) and (grid.coords % 56 == 0).all()
    assert Tiling().key() == {"size": 224, "mpp": 0.5, "magnification": None, "overlap": 0.0, "min_tissue": 0.25}
    assert Tiling(fallback_mpp=0.5).key() != Tiling().key()


def test_digestpath_labels_and_lesion_masks(tmp_path):
    base = tmp_path / "Colonoscopy_tissue_segment_dataset"
    image(base / "tissue-train-pos-v1/18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000.jpg")
    image(base / "tissue-train-pos-v1/18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000_mask.jpg")
    image(base / "tissue-train-pos-v1/D20190105401_2019-06-10 10_33_58-lv1-14461-17591-3264-2960.jpg")
    image(base / "tissue-train-neg/2018_64982_1-3_2019-02-25 21_57_36-lv0-34297-59778-2037-1445.jpg")
    d = dataset("digestpath")
    m = d.manifest(tmp_path)
    assert applicable_tasks(d) == {"zeroshot", "fewshot", "segmentation", "prompt-sensitivity", "robustness"} and d.classes == ["benign", "malignant"]
    assert [d.classes[i] for i in m.labels] == ["benign", "malignant", "malignant"]  # masks are not items
    assert all("_mask" not in p for p in m.paths)
    pos, neg = m.paths[1], m.paths[0]
    assert d.mask(m.root, pos) == base / Path(pos).with_name(Path(pos).stem + "_mask.jpg")
    assert d.mask(m.root, pos).name == "18-04842A_2019-05-07 23_56_16-lv1-34048-14024-2912-4000_mask.jpg"
    assert d.mask(m.root, neg) is None
    with pytest.raises(DatasetNotFoundError, match="lesion mask .* not found"):
        d.mask(m.root, m.paths[2])
    assert d.manifest(tmp_path).hash == m.hash
    (base / "tissue-train-neg" / Path(neg).name).rename(base / "tissue-train-pos-v1" / Path(neg).name)
    assert d.manifest(tmp_path).hash != m.hash
    shutil.rmtree(base / "tissue-train-neg")
    shutil.rmtree(base / "tissue-train-pos-v1")
    (base / "images").mkdir()
    not_found("digestpath", tmp_path, "tissue-train-pos-v1", "tissue-train-neg", "found images")

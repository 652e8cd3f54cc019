import json

import numpy as np
import pytest
from helpers import mirror

from pathboard.core.engine import plugins
from pathboard.core.errors import DatasetNotFoundError, PathboardError
from pathboard.core.interfaces.prompts import PromptSet
from pathboard.plugins.tasks.zeroshot import zero_shot_classifier


def test_crc_prompt_set_is_conchs():
    crc = plugins.get("dataset", "crc-val-he-7k")
    prompts = crc.prompts()
    assert len(prompts.templates) == 22 and prompts.templates[1] == "a photomicrograph showing CLASSNAME."
    single = prompts.prompts("single", crc.classes)
    assert list(single) == crc.classes and single["ADI"] == ["adipose."]
    ensemble = prompts.prompts("ensemble", crc.classes)
    assert len(ensemble["ADI"]) == 5 * 22 and len(ensemble["BACK"]) == 4 * 22
    assert "an H&E image of colorectal adenocarcinoma epithelium." in ensemble["TUM"]
    assert prompts.hash("single", crc.classes) != prompts.hash("ensemble", crc.classes)


def test_ensemble_classifier_is_the_renormalised_mean():
    rng = np.random.default_rng(0)
    table = {t: v / np.linalg.norm(v) for t, v in ((f"t{i}", rng.normal(size=8)) for i in range(6))}
    clf = zero_shot_classifier(lambda texts: np.stack([table[t] for t in texts]),
                               {"a": ["t0", "t1", "t2"], "b": ["t3", "t4", "t5"]})
    mean = (table["t0"] + table["t1"] + table["t2"]) / 3
    np.testing.assert_allclose(clf[0], mean / np.linalg.norm(mean), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(clf, axis=1), 1, rtol=1e-6)


def test_prompt_file_override_and_errors(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"templates": ["an image of CLASSNAME."], "classes": {"x": ["ex", "eks"]},
                             "canonical": {"x": "eks"}}))
    p = PromptSet.load(f)
    assert p.prompts("single", ["x"]) == {"x": ["an image of eks."]}
    assert p.prompts("ensemble", ["x"]) == {"x": ["an image of ex.", "an image of eks."]}
    with pytest.raises(PathboardError, match="no synonyms for class"):
        p.prompts("single", ["x", "y"])
    f.write_text(json.dumps({"templates": ["no placeholder"], "classes": {"x": ["ex"]}}))
    with pytest.raises(PathboardError, match="every template needs CLASSNAME"):
        PromptSet.load(f)


def test_crc_sample_manifest(shared_data, tmp_path):
    crc = plugins.get("dataset", "crc-val-he-7k")
    m = crc.manifest(shared_data)
    assert len(m) == 32 and m.paths[0] == "ADI/" + sorted((shared_data / "CRC-VAL-HE-7K/ADI").iterdir())[0].name
    # BACK is absent from the sample: labels index the full 9-class list and skip index 1
    assert sorted(set(m.labels.tolist())) == [0, 2, 3, 4, 5, 6, 7, 8]
    assert crc.classes[m.labels[-1]] == "TUM"
    root = tmp_path / "d"
    mirror(shared_data / "CRC-VAL-HE-7K", root / "CRC-VAL-HE-7K")
    assert crc.manifest(root).hash == m.hash
    (root / "CRC-VAL-HE-7K" / "ADI" / "new.png").write_bytes(b"x")
    assert crc.manifest(root).hash != m.hash
    (root / "CRC-VAL-HE-7K" / "ADI" / "notes.txt").write_text("ignored")
    assert len(crc.manifest(root)) == 33


def test_lc25000_lung_sample(shared_data):
    m = plugins.get("dataset", "lc25000-lung").manifest(shared_data)
    assert len(m) == 600 and np.bincount(m.labels).tolist() == [200, 200, 200]
    with pytest.raises(DatasetNotFoundError, match="colon_image_sets"):
        plugins.get("dataset", "lc25000-colon").manifest(shared_data)

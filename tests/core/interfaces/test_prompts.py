"""Prompt sets: CONCH's class names and templates, single and ensemble prompts, overrides and their errors."""
import json

import pytest

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError
from pathboard.core.interfaces.prompts import PromptSet


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

"""Weight resolution: the Hugging Face cache offline, local folders, the config file, content fingerprints."""
import shutil

import pytest
from support.tiny import write_open_clip_dir

from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.weights import Weights, overrides


def test_hub_models_resolve_from_the_cache_offline(tiny_hub):
    for id, repo in [("quiltnet-b32", "wisdomik--QuiltNet-B-32"), ("plip", "vinid--plip")]:
        w = plugins.get("model", id).resolve()
        assert w.path.parent.parent.name == f"models--{repo}" and w.origin.startswith("hf-cache:")


def test_missing_weights_say_what_to_fetch(tiny_hub):
    with pytest.raises(WeightsNotFoundError) as err:
        plugins.get("model", "openai-clip-b16").resolve()
    msg = str(err.value)
    assert "\n" not in msg and "hf download timm/vit_base_patch16_clip_224.openai" in msg
    assert "--weights openai-clip-b16=PATH" in msg and "HF_HUB_OFFLINE" in msg


def test_command_line_beats_config_file(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[weights]\nquiltnet-b32 = "{a}"\nplip = "{a}"\n')
    monkeypatch.setenv("PATHBOARD_CONFIG", str(cfg))
    found = overrides([f"plip={b}"])
    assert found["quiltnet-b32"] == (a, f"config {cfg}") and found["plip"] == (b, "--weights")
    with pytest.raises(PathboardError, match="expects ID=PATH"):
        overrides(["plip"])


def test_fingerprint_hashes_bytes_not_names(tmp_path):
    d = write_open_clip_dir(tmp_path / "m")
    fp = Weights(d, "x").fingerprint
    renamed = shutil.copytree(d, tmp_path / "renamed")
    assert Weights(renamed, "y").fingerprint == fp
    (renamed / "open_clip_pytorch_model.bin").write_bytes(b"different")
    assert Weights(renamed, "y").fingerprint != fp

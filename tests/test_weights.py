"""Weight resolution and the two adapters, on tiny models in the real on-disk layouts."""
import json
import shutil

import open_clip
import pytest
import torch
from PIL import Image
from tiny import TINY_OPEN_CLIP, write_open_clip_dir

from pathboard.adapters import OpenCLIPSpec
from pathboard.core.engine import plugins
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.model import Runtime
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


def test_open_clip_architecture_plus_checkpoint_file(tmp_path, monkeypatch):
    """A bare checkpoint loads for a built-in architecture name (here a tiny one registered for the test)."""
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    (cfg_dir / "tiny-test-arch.json").write_text(json.dumps(TINY_OPEN_CLIP["model_cfg"]))
    open_clip.add_model_config(cfg_dir)
    torch.manual_seed(1)
    reference = open_clip.create_model("tiny-test-arch")
    ckpt = tmp_path / "model.pt"
    torch.save(reference.state_dict(), ckpt)
    spec = OpenCLIPSpec(id="tiny", arch="tiny-test-arch")
    with pytest.raises(WeightsNotFoundError, match="--weights tiny=PATH"):
        spec.resolve()
    model = spec.load(spec.resolve(Weights(ckpt, "--weights")), Runtime.create("cpu"))
    image = model.preprocess(Image.new("RGB", (80, 60), (200, 100, 150)))[None]
    got = model.encode_images(image)
    want = torch.nn.functional.normalize(reference.eval().encode_image(image), dim=-1)
    torch.testing.assert_close(got, want)


def test_half_precision_on_cpu_falls_back_with_a_note(capsys):
    rt = Runtime.create("cpu", "bf16")
    assert rt.precision == "fp32" and "bf16 is not used on CPU" in capsys.readouterr().err
    with pytest.raises(PathboardError, match="unknown device"):
        Runtime.create("tpu")

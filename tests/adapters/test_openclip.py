"""The open_clip adapter: built-in architectures plus a checkpoint (OpenAI CLIP, PathGen-CLIP), private
weights (VirCLIP) and ``--weights`` files, on tiny models in the real on-disk layouts."""
import json
import shutil

import open_clip
import pytest
import torch
from PIL import Image
from support.helpers import pathboard
from support.model_contract import check_model
from support.tiny import OPENAI_MEAN, OPENAI_STD, TINY_OPEN_CLIP, hf_snapshot, write_open_clip_dir
from support.tiny_arch import tiny_architecture, tiny_checkpoint, tiny_config
from support.tokens import GOLDEN, open_clip_ids

from pathboard.adapters import OpenCLIPSpec
from pathboard.core.errors import WeightsNotFoundError
from pathboard.core.interfaces.model import Runtime
from pathboard.core.interfaces.weights import Weights


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


@pytest.fixture()
def snapshot(tiny_hub):
    """hf_snapshot into the session's HF cache, removed again afterwards: other tests rely on these
    repos being absent (the missing-weights messages)."""
    made = []

    def make(repo, files):
        folder = hf_snapshot(tiny_hub, repo, files)
        made.append(folder.parent.parent)
        return folder

    yield make
    for repo in made:
        shutil.rmtree(repo, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("id, arch, repo, size, patch", [
    ("openai-clip-b16", "ViT-B-16-quickgelu", "timm/vit_base_patch16_clip_224.openai", 224, 16),
    ("openai-clip-l14", "ViT-L-14-quickgelu", "timm/vit_large_patch14_clip_224.openai", 224, 14),
])
def test_openai_clip(id, arch, repo, size, patch, snapshot, shared_data, tmp_path, monkeypatch):
    env = tiny_architecture(monkeypatch, tmp_path, arch, size, patch)
    state = tiny_checkpoint(arch)
    folder = tmp_path / "repo"
    folder.mkdir()
    torch.save(state, folder / "open_clip_pytorch_model.bin")
    # the timm repos also ship an open_clip_config.json; the -quickgelu architecture must win over it
    # (open_clip 3 builds plain-GELU models from configs without quick_gelu)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": tiny_config(size, patch, False)}))
    snapshot(repo, {f.name: f for f in folder.iterdir()})
    model = check_model(id, size=size, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                        tmp_path=tmp_path, tokenize=open_clip_ids, golden=GOLDEN, env=env)
    assert model.model.visual.transformer.resblocks[0].mlp.gelu.__class__.__name__ == "QuickGELU"


@pytest.mark.slow
@pytest.mark.parametrize("id, arch, repo, file, size, patch", [
    ("pathgen-clip", "ViT-B-16-quickgelu", "jamessyx/PathGen-CLIP", "pathgen-clip.pt", 224, 16),
    ("pathgen-clip-l", "ViT-L-14-336-quickgelu", "jamessyx/PathGen-CLIP-L", "pathgen-clip-l.pt", 336, 14),
])
def test_pathgen_training_checkpoints(id, arch, repo, file, size, patch, snapshot, shared_data, tmp_path,
                                      monkeypatch):
    env = tiny_architecture(monkeypatch, tmp_path, arch, size, patch)
    state = tiny_checkpoint(arch)
    ckpt = tmp_path / file
    # exactly what open_clip's DDP training writes
    torch.save({"epoch": 10, "name": "pathgen", "state_dict": {f"module.{k}": v for k, v in state.items()}}, ckpt)
    snapshot(repo, {file: ckpt})
    model = check_model(id, size=size, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                        tmp_path=tmp_path, tokenize=open_clip_ids, golden=GOLDEN, env=env)
    loaded = model.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())  # every unwrapped weight arrived
    # a local copy of the checkpoint file works the same
    local = check_model(id, size=size, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                        tmp_path=tmp_path / "local", weights=ckpt, env=env, cli=False)
    assert torch.equal(local.model.logit_scale, model.model.logit_scale)


@pytest.mark.subprocess
def test_pathgen_missing_weights_is_gated_advice(shared_data, tmp_path):
    out = pathboard("run", "--models", "pathgen-clip-l", "--datasets", "crc-val-he-7k", "--data-root",
                    shared_data, "--db", tmp_path / "x.duckdb", env={"HF_HOME": str(tmp_path / "empty-hf")})
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "hf download jamessyx/PathGen-CLIP-L" in out.stderr and "gated" in out.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_virclip_private_weights(shared_data, tmp_path):
    (tmp_path / "run").mkdir()
    missing = pathboard("run", "--models", "virclip", "--datasets", "crc-val-he-7k", "--data-root", shared_data,
                        "--db", tmp_path / "x.duckdb")
    assert missing.returncode == 2 and "pass --weights virclip=PATH" in missing.stderr
    weights = write_open_clip_dir(tmp_path / "virclip")
    check_model("virclip", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path / "run", tokenize=open_clip_ids, golden=GOLDEN, weights=weights, published=False)

"""Shrink a built-in open_clip architecture for a test, under its real name.

Models such as ``openai-clip-b16`` or ``pathgen-clip`` are a built-in open_clip architecture plus a
bare checkpoint. ``tiny_architecture`` replaces that architecture's config by a tiny one with the
same image size, patch size and tokenizer, in this process (monkeypatch) and in the ``pathboard``
CLI subprocesses (through a ``sitecustomize`` on PYTHONPATH), so the production plugin loads a tiny
checkpoint through exactly its own code path.
"""
import json

import open_clip
import torch


def tiny_config(image_size: int, patch_size: int, quick_gelu: bool = True) -> dict:
    return {
        "embed_dim": 32,
        "quick_gelu": quick_gelu,
        "vision_cfg": {"image_size": image_size, "layers": 2, "width": 64, "head_width": 32,
                       "patch_size": patch_size},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }


def tiny_architecture(monkeypatch, tmp_path, arch: str, image_size: int, patch_size: int) -> dict:
    """Returns the environment to give CLI subprocesses."""
    cfg = tiny_config(image_size, patch_size, quick_gelu=arch.endswith("quickgelu"))
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, arch, cfg)
    site = tmp_path / "tiny-arch-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import json, open_clip.factory as f\n"
        f"f._MODEL_CONFIGS[{arch!r}] = json.loads({json.dumps(json.dumps(cfg))})\n")
    return {"PYTHONPATH": str(site)}


def tiny_checkpoint(arch: str, seed: int = 0) -> dict:
    """A state dict of the (patched) architecture."""
    torch.manual_seed(seed)
    return open_clip.create_model(arch).state_dict()

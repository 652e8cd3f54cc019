"""Tiny random-init models written in the exact on-disk layouts of the real published weights.

They load through pathboard's production loaders unchanged, with HF_HUB_OFFLINE=1.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]

TINY_OPEN_CLIP = {
    "model_cfg": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
        # vocab_size stays 49408 so open_clip's bundled BPE tokenizer works unchanged
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
}


def hf_snapshot(hf_home: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Lay ``files`` out as huggingface_hub does: blobs/ + snapshots/<commit>/ symlinks + refs/main."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    if snap.exists():
        shutil.rmtree(repo)
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, src in files.items():
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        shutil.copyfile(src, blob)
        os.symlink(os.path.relpath(blob, snap), snap / name)
    return snap


def write_open_clip_dir(out: Path, config: dict = TINY_OPEN_CLIP, model=None, seed: int = 0) -> Path:
    """``open_clip_config.json`` + ``open_clip_pytorch_model.bin``, as in ``hf-hub:wisdomik/QuiltNet-B-32``."""
    import open_clip

    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps(config))
    if model is None:
        torch.manual_seed(seed)
        model = open_clip.create_model(f"local-dir:{out}")
    torch.save(model.state_dict(), out / "open_clip_pytorch_model.bin")
    return out


def write_hf_clip_dir(out: Path, seed: int = 0) -> Path:
    """A transformers CLIPModel directory laid out like ``vinid/plip`` (pytorch_model.bin, CLIP BPE files)."""
    from transformers import CLIPConfig, CLIPModel

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406,
                         eos_token_id=49407, pad_token_id=49407),
        vision_config=dict(image_size=224, patch_size=32, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=2),
        projection_dim=32,
    )
    model = CLIPModel(config)
    config.save_pretrained(out)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    write_clip_bpe_tokenizer(out)
    (out / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": OPENAI_MEAN,
        "image_std": OPENAI_STD, "resample": 3, "size": 224,
    }))
    return out


def write_clip_bpe_tokenizer(out: Path) -> None:
    """vocab.json, merges.txt, tokenizer.json, tokenizer_config.json: the CLIP BPE files HF CLIP repos
    ship, built from open_clip's bundled BPE with HF's special-token names."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe
    from transformers import CLIPTokenizer

    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {names.get(k, k): v for k, v in SimpleTokenizer().encoder.items()}
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges]).save_pretrained(out)


def install_tiny_hub(hf_home: Path, work: Path) -> None:
    """The two foundation models in the HF cache under their real repo ids."""
    qn = write_open_clip_dir(work / "quiltnet")
    hf_snapshot(hf_home, "wisdomik/QuiltNet-B-32", {f.name: f for f in qn.iterdir()})
    plip = write_hf_clip_dir(work / "plip")
    hf_snapshot(hf_home, "vinid/plip", {f.name: f for f in plip.iterdir()})

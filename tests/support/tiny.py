"""Tiny random-init models written in the exact on-disk layouts of the real published weights.

They load through pathboard's production loaders unchanged, with HF_HUB_OFFLINE=1.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

from pathboard.testing import OPENAI_MEAN, OPENAI_STD, TINY_OPEN_CLIP, hf_snapshot, write_open_clip_dir  # noqa: F401


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

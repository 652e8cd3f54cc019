"""Tiny random-init KEP-CTP and KEEP written in the layouts their real weights are published in.

- KEP-CTP: the released KEP-CTP_OpenPath folder -- ``pytorch_model.bin`` (the whole model, CTransPath in
  timm 0.5.4's key layout) beside PubMedBERT's ``config.json`` and tokenizer files.
- KEEP: the ``Astaxanthin/KEEP`` hub repo -- ``model.safetensors`` (LayerScale saved as ``ls*.weight``),
  its ``config.json`` (``vision_config``/``text_config``/``projection_dim``) and tokenizer files.

Widths and depths shrink; image size (224), patch sizes, Swin window and every key name stay real.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# a real uncased WordPiece vocabulary, small: the golden prompt's words first, then the CRC class names
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "an", "h", "&", "e", "image", "of", "adi", "##pose",
         "tissue", ".", "lymph", "##ocytes", "tumor", "debris", "mucus", "smooth", "muscle", "normal", "colon",
         "mucosa", "cancer", "associated", "stroma", "background", "epithelium", "colorectal", "adenocarcinoma"]
GOLDEN = ("an H&E image of adipose tissue.", [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 3])
SPECIAL = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
TINY_BERT = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=512, type_vocab_size=2)
DIM = 32  # the tiny models' embedding size
CTP_TINY = dict(embed_dim=DIM, stem_dim=16, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), window=7)


def write_tokenizer(out: Path) -> None:
    """vocab.txt, tokenizer_config.json and special_tokens_map.json, as in a BERT model directory."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL))


# ---------------------------------------------------------------------------------------------- KEP-CTP

def relative_position_index(w: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]


def timm054_layout(sd: dict, depths, window: int = 7, grid: int = 56) -> dict:
    """Current-timm Swin keys -> the layout timm 0.5.4 (timm_ctp) saved: patch merging at the end of
    stage i (current timm: start of stage i+1), a relative-position index per block, and a shift mask
    in the odd blocks of every stage whose grid is larger than the window."""
    out = {re.sub(r"^visual\.layers\.(\d+)\.downsample", lambda m: f"visual.layers.{int(m[1]) - 1}.downsample", k): v
           for k, v in sd.items()}
    for i, depth in enumerate(depths):
        side = grid // 2**i
        win = min(window, side)
        for j in range(depth):
            out[f"visual.layers.{i}.blocks.{j}.attn.relative_position_index"] = relative_position_index(win)
            if j % 2 and side > window:  # values are rebuilt on load; only the entries matter here
                out[f"visual.layers.{i}.blocks.{j}.attn_mask"] = torch.zeros((side // win) ** 2, win * win, win * win)
    return out


def write_kep_dir(out: Path, seed: int = 0) -> Path:
    """A KEP-CTP_OpenPath folder: pytorch_model.bin + PubMedBERT's config.json and tokenizer."""
    from transformers import BertConfig

    from pathboard.plugins.models._kep_modules import KEPCTP

    torch.manual_seed(seed)
    config = BertConfig(**TINY_BERT)
    model = KEPCTP(config, **CTP_TINY)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    write_tokenizer(out)
    torch.save(timm054_layout(model.state_dict(), CTP_TINY["depths"]), out / "pytorch_model.bin")
    return out


# ------------------------------------------------------------------------------------------------- KEEP

TINY_KEEP_CONFIG = {
    "model_type": "keep",
    "vision_config": {"model_type": "vit", "img_size": 224, "patch_size": 16, "hidden_size": 32, "num_heads": 2,
                      "num_layers": 2, "mlp_ratio": 4.0, "qkv_bias": True, "drop_rate": 0.0, "attn_drop_rate": 0.0,
                      "init_values": 1e-5, "num_classes": 0, "dynamic_img_size": True},
    "text_config": {"model_type": "bert", "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                    "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
                    **TINY_BERT},
    "projection_dim": DIM,
}


def keep_release_layout(sd: dict) -> dict:
    """KEEP's modeling_keep.py swaps timm's LayerScale for one whose parameter is ``weight``, not ``gamma``."""
    return {re.sub(r"\.gamma$", ".weight", k): v.contiguous() for k, v in sd.items()}


def write_keep_files(out: Path, seed: int = 0, bin_file: bool = False) -> Path:
    """The files of Astaxanthin/KEEP: config.json, model.safetensors (or the GitHub release's
    pytorch_model.bin), vocab.txt, tokenizer_config.json, special_tokens_map.json."""
    from safetensors.torch import save_file

    from pathboard.plugins.models._keep_modules import KEEP

    torch.manual_seed(seed)
    cfg = TINY_KEEP_CONFIG
    model = KEEP(cfg["vision_config"], cfg["text_config"], cfg["projection_dim"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    write_tokenizer(out)
    sd = keep_release_layout(model.state_dict())
    if bin_file:
        torch.save(sd, out / "pytorch_model.bin")
    else:
        save_file(sd, str(out / "model.safetensors"))
    return out

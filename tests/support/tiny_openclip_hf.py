"""Tiny random-init BiomedCLIP / QuiltNet-B-16(-PMB) / CONCH models in the real on-disk layouts.

Real image sizes, mean/std, config structure and file names; tiny widths and depths. The BERT towers
get a WordPiece ``vocab.txt`` written here (the words of the test prompts + BERT's special tokens),
CONCH uses the byte-level BPE tokenizer that ships inside ``conch-fork``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from support.tiny import OPENAI_MEAN, OPENAI_STD

BIOMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
PUBMEDBERT = "microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract"  # its old name, in QuiltNet-B-16-PMB's config

# PubMedBERT's vocab starts with these five; then the words of the prompts the tests use
BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
              "an", "h", "&", "e", "image", "of", "adipose", "tissue", ".", "lymph", "##ocytes", "tumor",
              "background", "debris", "mucus", "smooth", "muscle", "normal", "colon", "mucosa", "cancer", "-",
              "associated", "stroma", "colorectal", "aden", "##ocarcinoma", "epithelium", ",", "stain", "stained",
              "showing", "a", "is", "shown", "this", "there", "shows", "presence", "present", "example"]

# the files as microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 ships them (transformers 4 format)
BERT_TOKENIZER_CONFIG = {
    "clean_up_tokenization_spaces": True, "cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True,
    "mask_token": "[MASK]", "model_max_length": 1000000000000000019884624838656, "never_split": None,
    "pad_token": "[PAD]", "sep_token": "[SEP]", "strip_accents": None, "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]",
}
BERT_SPECIAL_TOKENS = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
                       "unk_token": "[UNK]"}


def bert_tower_config(text_repo: str, embed_dim: int = 32) -> dict:
    """The open_clip_config.json of BiomedCLIP / QuiltNet-B-16-PMB (timm ViT-B/16 + BERT, context 256),
    with a tiny timm ViT of the same patch and image size."""
    return {
        "model_cfg": {
            "embed_dim": embed_dim,
            "vision_cfg": {"timm_model_name": "vit_tiny_patch16_224", "timm_model_pretrained": False,
                           "timm_pool": "", "timm_proj": "linear", "image_size": 224},
            "text_cfg": {"hf_model_name": text_repo, "hf_tokenizer_name": text_repo, "hf_proj_type": "mlp",
                         "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 256},
        },
        "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
    }


def write_bert_config(out: Path) -> Path:
    """A tiny BERT ``config.json`` (model_type bert, BiomedBERT's 512 positions), as in the BERT repo."""
    from transformers import BertConfig

    out.mkdir(parents=True, exist_ok=True)
    cfg = BertConfig(vocab_size=len(BERT_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, type_vocab_size=2, pad_token_id=0)
    cfg.architectures = ["BertForMaskedLM"]
    cfg.save_pretrained(out)
    return out / "config.json"


def write_bert_tokenizer(out: Path, fast: bool = True) -> Path:
    """``vocab.txt`` + ``tokenizer_config.json`` + ``special_tokens_map.json`` (+ ``tokenizer.json``)."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps(BERT_TOKENIZER_CONFIG, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps(BERT_SPECIAL_TOKENS))
    if fast:
        # from_pretrained on the directory really tokenizes (BertTokenizer(vocab_file=) would not)
        AutoTokenizer.from_pretrained(out).backend_tokenizer.save(str(out / "tokenizer.json"))
    return out


def write_bert_tower_dir(out: Path, text_repo: str, seed: int = 0, bert_config: bool = False,
                         extra: dict[str, dict] | None = None) -> Path:
    """A BiomedCLIP-style open_clip directory: open_clip_config.json, open_clip_pytorch_model.bin and
    the tokenizer files (the BERT ``config.json`` only with ``bert_config``, as in a self-contained
    local copy); ``extra`` adds JSON files (e.g. a repo's own non-BERT config.json)."""
    import open_clip

    out.mkdir(parents=True, exist_ok=True)
    cfg = bert_tower_config(text_repo)
    (out / "open_clip_config.json").write_text(json.dumps(cfg, indent=2))
    write_bert_tokenizer(out)
    bert = out / "_bert"
    write_bert_config(bert)
    torch.manual_seed(seed)
    model = open_clip.create_model(
        f"local-dir:{out}", text_cfg={**cfg["model_cfg"]["text_cfg"], "hf_model_name": str(bert),
                                      "hf_model_pretrained": False})
    torch.save(model.state_dict(), out / "open_clip_pytorch_model.bin")
    if bert_config:
        (bert / "config.json").rename(out / "config.json")
    (bert / "config.json").unlink(missing_ok=True)
    bert.rmdir()
    for name, content in (extra or {}).items():
        (out / name).write_text(json.dumps(content, indent=2))
    return out


def write_bert_repo(out: Path) -> Path:
    """The BERT repo as far as a CLIP text tower needs it: config.json, vocab.txt and its 28-byte
    tokenizer_config.json (BiomedBERT's weights are not needed: the checkpoint holds the tower's)."""
    write_bert_config(out)
    (out / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    (out / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    return out


QUILTNET_B16 = {
    # wisdomik/QuiltNet-B-16's open_clip_config.json is ViT-B-16 *without* quick_gelu (469 bytes)
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": OPENAI_MEAN, "std": OPENAI_STD},
}


def write_quiltnet_b16_dir(out: Path, seed: int = 0) -> Path:
    from support.tiny import write_clip_bpe_tokenizer, write_open_clip_dir

    write_open_clip_dir(out, QUILTNET_B16, seed=seed)
    write_clip_bpe_tokenizer(out)
    return out


def conch_tiny_config() -> dict:
    """conch_ViT-B-16.json with tiny widths and depths; heads, image size (448), patch (16), the 256
    caption queries, vocabulary (32007) and context (128) as published."""
    from conch.open_clip_custom import factory

    cfg = json.loads((factory.CFG_DIR / "conch_ViT-B-16.json").read_text())
    cfg.update(embed_dim=32, embed_dim_caption=24)
    cfg["vision_cfg"].update(width=48, layers=2)          # 12 heads
    cfg["text_cfg"].update(width=48, layers=2)            # 12 heads
    cfg["multimodal_cfg"].update(width=48, layers=1)
    return cfg


def write_conch_checkpoint(out: Path, seed: int = 0) -> Path:
    """``pytorch_model.bin``: a CoCa state dict, as in MahmoodLab/conch."""
    from conch.open_clip_custom import CoCa

    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = conch_tiny_config()
    cfg.pop("custom_text")
    torch.manual_seed(seed)
    torch.save(CoCa(**cfg).state_dict(), out)
    return out

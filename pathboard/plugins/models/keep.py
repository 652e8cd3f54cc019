"""KEEP (Zhou et al., 2024): a knowledge-enhanced pathology vision-language foundation model.

pathboard's own module, state-dict compatible with ``Astaxanthin/KEEP`` (``model.safetensors``; MIT),
built from timm and transformers without ``trust_remote_code``. Key names follow the repo's
``modeling_keep.py``: ``visual`` is timm's ``vit_large_patch16_224`` (layer scale 1e-5, no head, CLS token;
its LayerScale parameters renamed ``ls*.weight`` from timm's ``ls*.gamma``), ``visual_head`` a
Linear-GELU-Linear to 768, ``text`` a ``BertModel`` (PubMedBERT) whose pooler output is the text
embedding, ``logit_scale`` a learned scalar. Sizes come from the repo's ``config.json``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pathboard.api import (
    BertCLIPModel,
    EmbeddingModel,
    ModelCard,
    ModelSpec,
    Runtime,
    Weights,
    from_hub,
    hookimpl,
    imagenet_transform,
    load_strict,
    require_weight_files,
    wordpiece_tokenizer,
)

REPO = "Astaxanthin/KEEP"
REQUIRED = ["config.json", "vocab.txt", "tokenizer_config.json"]
OPTIONAL = ["special_tokens_map.json"]
WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin"]  # the hub has the first; the GitHub release the second


def to_timm(sd: dict) -> dict:
    """KEEP's renamed LayerScale (``visual.blocks.N.ls1.weight``) -> timm's ``ls1.gamma``."""
    return {re.sub(r"^(visual\.blocks\.\d+\.ls[12])\.weight$", r"\1.gamma", k): v for k, v in sd.items()}


@dataclass
class KEEPSpec(ModelSpec):
    requires: tuple[str, ...] = ("torch", "timm", "transformers")

    def resolve(self, override: Weights | None = None) -> Weights:
        if override is None:
            return from_hub(self.id, REPO, REQUIRED, WEIGHT_FILES[:1], OPTIONAL)
        groups = [("config.json",), ("vocab.txt",), tuple(WEIGHT_FILES)]
        require_weight_files(self.id, override.path, groups, f"download it with `hf download {REPO}`")
        return override

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        import torch

        from pathboard.plugins.models._keep_modules import KEEP

        cfg = json.loads((weights.path / "config.json").read_text())
        path = next(weights.path / f for f in WEIGHT_FILES if (weights.path / f).is_file())
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        model = KEEP(cfg.get("vision_config") or {}, cfg["text_config"], cfg.get("projection_dim", 768))
        load_strict(model, to_timm(sd), self.id, path)
        tokenizer = wordpiece_tokenizer(weights.path, self.id)
        return BertCLIPModel(self.id, weights.fingerprint, model.to(runtime.device).eval(), imagenet_transform(224),
                         tokenizer, runtime)



CARD = ModelCard(
    title="KEEP", paper="Zhou et al., A Knowledge-enhanced Pathology Vision-language Foundation Model for "
    "Cancer Diagnosis, arXiv:2412.13126 (2024)", license="MIT", url=f"https://huggingface.co/{REPO}",
    params="414M", embed_dim=768, input_size=224,
    notes="ViT-L/16 + PubMedBERT, trained on 143K knowledge-graph semantic groups. Loaded by pathboard's own "
    "timm + BertModel modules (no trust_remote_code), keys matched strictly. ImageNet mean/std, bicubic "
    "resize + centre crop 224, text context 256.")


@hookimpl
def register_models(register):
    register(KEEPSpec(id="keep", card=CARD))

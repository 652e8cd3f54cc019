"""transformers ``CLIPModel`` checkpoints (e.g. ``vinid/plip``), from the HF cache or a local dir."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pathboard.core.interfaces.model import EmbeddingModel, ModelSpec, Runtime, TorchCLIPModel
from pathboard.core.interfaces.weights import Weights, from_hub

if TYPE_CHECKING:
    import torch
    from torchvision import transforms as T

REQUIRED = ["config.json", "preprocessor_config.json", "tokenizer_config.json"]
OPTIONAL = ["vocab.json", "merges.txt", "tokenizer.json", "special_tokens_map.json"]
WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin"]


@dataclass
class HFCLIPSpec(ModelSpec):
    repo: str = ""
    requires: tuple[str, ...] = ("torch", "transformers")

    def resolve(self, override: Weights | None = None) -> Weights:
        return override or from_hub(self.id, self.repo, REQUIRED, WEIGHT_FILES, OPTIONAL, gated=self.card.gated)

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        from transformers import AutoTokenizer, CLIPModel

        model = CLIPModel.from_pretrained(weights.path).to(runtime.device).eval()
        tokenizer = AutoTokenizer.from_pretrained(weights.path)
        preprocess = image_transform(json.loads((weights.path / "preprocessor_config.json").read_text()))
        return HFCLIPModel(self.id, weights.fingerprint, model, preprocess, tokenizer, runtime)


def image_transform(cfg: dict) -> T.Compose:
    """The CLIPImageProcessor pipeline as a (picklable, fast) torchvision transform."""
    from torchvision import transforms as T

    def side(value, key):
        return value if isinstance(value, int) else value.get(key) or value.get("height")

    size = side(cfg.get("size", 224), "shortest_edge")
    crop = side(cfg.get("crop_size", size), "height")
    steps = []
    if cfg.get("do_resize", True):
        steps.append(T.Resize(size, interpolation=T.InterpolationMode.BICUBIC))
    if cfg.get("do_center_crop", True):
        steps.append(T.CenterCrop(crop))
    steps.append(T.ToTensor())
    if cfg.get("do_normalize", True):
        steps.append(T.Normalize(cfg["image_mean"], cfg["image_std"]))
    return T.Compose(steps)


class HFCLIPModel(TorchCLIPModel):
    def image_features(self, batch):
        return _features(self.model.get_image_features(pixel_values=batch))

    def text_features(self, texts):
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt",
                                max_length=self.model.config.text_config.max_position_embeddings)
        return _features(self.model.get_text_features(**tokens.to(self.runtime.device)))


def _features(out) -> torch.Tensor:
    """transformers 5 returns an output object (projected features in ``pooler_output``); 4.x a tensor."""
    import torch

    return out if isinstance(out, torch.Tensor) else out.pooler_output

"""KEEP's torch module (see :mod:`pathboard.plugins.models.keep`), imported only when the model loads."""
from __future__ import annotations

import torch
from torch import nn

from pathboard.api import bert_model


class KEEP(nn.Module):
    def __init__(self, vision: dict, text: dict, projection_dim: int = 768):
        super().__init__()
        import timm

        self.visual = timm.create_model(
            "vit_large_patch16_224", pretrained=False, num_classes=0,
            img_size=vision.get("img_size", 224), patch_size=vision.get("patch_size", 16),
            init_values=vision.get("init_values", 1e-5), embed_dim=vision.get("hidden_size", 1024),
            depth=vision.get("num_layers", 24), num_heads=vision.get("num_heads", 16),
            mlp_ratio=vision.get("mlp_ratio", 4.0), qkv_bias=vision.get("qkv_bias", True))
        width = self.visual.num_features
        self.visual_head = nn.Sequential(nn.Linear(width, projection_dim), nn.GELU(),
                                         nn.Linear(projection_dim, projection_dim))
        self.text = bert_model(text)
        self.logit_scale = nn.Parameter(torch.tensor(1 / 0.04).log())

    @property
    def bert_config(self):
        return self.text.config

    def encode_image(self, x):
        return self.visual_head(self.visual(x))

    def encode_text(self, tokens: dict):
        return self.text(**tokens).pooler_output

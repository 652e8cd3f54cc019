"""KEP-CTP's torch modules (see :mod:`pathboard.plugins.models.kep`), imported only when the model loads."""
from __future__ import annotations

import re

import torch
from torch import nn

from pathboard.api import bert_model


class ConvStem(nn.Module):
    """CTransPath's patch embedding: two stride-2 3x3 conv-BN-ReLU, then a 1x1 conv (``proj.0`` ... ``proj.6``)."""

    def __init__(self, img_size=224, patch_size=4, in_chans=3, embed_dim=96, norm_layer=None, **_):
        super().__init__()
        assert patch_size == 4 and embed_dim % 8 == 0
        layers, width = [], embed_dim // 8
        for c_in, c_out in [(in_chans, width), (width, width * 2)]:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.proj = nn.Sequential(*layers, nn.Conv2d(width * 2, embed_dim, 1))
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()
        self.img_size, self.patch_size = (img_size, img_size), (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def forward(self, x):
        return self.norm(self.proj(x).permute(0, 2, 3, 1))  # NHWC, as timm's Swin stages expect


class PathBert(nn.Module):
    """KEP's ``PATH_BERT``: BERT pooler output through an MLP."""

    def __init__(self, bert_config, embed_dim: int):
        super().__init__()
        self.bert_model = bert_model(bert_config)
        width = self.bert_model.config.hidden_size
        self.mlp_embed = nn.Sequential(nn.Linear(width, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, tokens: dict) -> torch.Tensor:
        out = self.bert_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return self.mlp_embed(out.pooler_output)


class KEPCTP(nn.Module):
    def __init__(self, bert_config, embed_dim=512, stem_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7):
        super().__init__()
        from timm.models.swin_transformer import SwinTransformer

        self.visual = SwinTransformer(img_size=224, patch_size=4, embed_dim=stem_dim, depths=depths, num_heads=heads,
                                      window_size=window, num_classes=0, drop_path_rate=0.0, embed_layer=ConvStem)
        width = self.visual.num_features
        self.visual_head = nn.Sequential(nn.Linear(width, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))
        self.text = PathBert(bert_config, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(1 / 0.07).log())

    @classmethod
    def for_checkpoint(cls, sd: dict, bert_config) -> KEPCTP:
        """The architecture the checkpoint's tensor shapes describe (CTransPath's for the release)."""
        pattern = r"visual\.layers\.(\d+)\.blocks\.(\d+)\."
        blocks = [tuple(map(int, m.groups())) for k in sd if (m := re.match(pattern, k))]
        if not blocks:
            raise KeyError("visual.layers.*.blocks.*")
        stages = range(max(s for s, _ in blocks) + 1)
        table = "visual.layers.{}.blocks.0.attn.relative_position_bias_table"
        return cls(bert_config, embed_dim=sd["visual_head.2.weight"].shape[0],
                   stem_dim=sd["visual.patch_embed.proj.6.weight"].shape[0],
                   depths=tuple(max(b for s, b in blocks if s == i) + 1 for i in stages),
                   heads=tuple(sd[table.format(i)].shape[1] for i in stages),
                   window=(round(sd[table.format(0)].shape[0] ** 0.5) + 1) // 2)

    @property
    def bert_config(self):
        return self.text.bert_model.config

    def encode_image(self, x):
        return self.visual_head(self.visual(x))

    def encode_text(self, tokens: dict):
        return self.text(tokens)

"""Tiny stand-ins for the slide-level models, in their real on-disk layout, for offline tests (``pathboard.testing``
re-exports the writers).

What they are: random-init networks that expose **the same loading path and method names** as the real
checkpoints, so pathboard's production loaders run on them unchanged, with ``HF_HUB_OFFLINE=1``:

- :func:`write_titan`: a folder like ``MahmoodLab/TITAN``: ``config.json`` whose ``auto_map`` points at
  ``configuration_titan.py`` / ``modeling_titan.py`` (written here, pathboard's own code), loaded with
  ``AutoModel.from_pretrained(folder, trust_remote_code=True)``; it has ``return_conch()`` (a patch encoder and its
  eval transform), ``encode_slide_from_patch_features(features, coords, patch_size_lv0)`` on (1, N, C) and (1, N, 2)
  tensors (the slide representation, before ``vision_encoder.proj`` maps it into the text space, as TITAN's
  ``zero_shot`` does), ``text_encoder.tokenizer(texts)`` and ``encode_text(ids, normalize=...)`` (which drops the last
  token, as TITAN's does); like TITAN's, no logit scale.
- :func:`write_prism`: a folder like ``paige-ai/Prism``, loaded the same way, with ``slide_representations``,
  ``tokenize``, ``text_decoder`` (and its ``context_dim``), ``text_to_latents``, ``img_to_latents`` and
  ``temperature``.
- :func:`write_virchow`: a timm folder like ``paige-ai/Virchow`` (``config.json`` with ``architecture`` and
  ``model_args``, ``model.safetensors``) of the same architecture family (a ViT with SwiGLU MLPs), 1 block of
  width 32, loaded with ``timm.create_model("local-dir:...")``.
- :func:`write_trident_features`: one slide's features in TRIDENT's ``.h5`` layout.

What they check: the plumbing (loading, remote-code opt-in, shapes, caching, sharing tiles, the tasks and the
leaderboard); never TITAN's, PRISM's or Virchow's numbers, which need their gated weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TITAN_CONFIG = '''\
from transformers import PretrainedConfig


class TitanConfig(PretrainedConfig):
    model_type = "titan"

    def __init__(self, patch_dim=24, embed_dim=16, vocab_size=512, context_length=32, conch_input=64, **kwargs):
        super().__init__(**kwargs)
        self.patch_dim, self.embed_dim, self.vocab_size = patch_dim, embed_dim, vocab_size
        self.context_length, self.conch_input = context_length, conch_input
'''

TITAN_MODELING = '''\
"""pathboard's tiny stand-in for TITAN's hub code: same entry points, none of its architecture."""
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from .configuration_titan import TitanConfig


class WordTokenizer:
    """Texts -> [B, L] word ids (a stable hash of each lowercased word), 0-padded."""

    def __init__(self, vocab_size, length):
        self.vocab_size, self.length = vocab_size, length

    def __call__(self, texts):
        ids = torch.zeros(len(texts), self.length + 1, dtype=torch.long)
        for i, text in enumerate(texts):
            words = text.lower().split()[: self.length]
            for j, word in enumerate(words):
                ids[i, j] = 2 + sum((k + 1) * ord(c) for k, c in enumerate(word)) % (self.vocab_size - 2)
            ids[i, len(words)] = 1  # the end token
        return ids


class TextEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.tokenizer = WordTokenizer(config.vocab_size, config.context_length)

    def forward(self, ids):
        mask = (ids > 0).float().unsqueeze(-1)
        return self.proj((self.embed(ids) * mask).sum(1) / mask.sum(1).clamp(min=1))


class VisionEncoder(nn.Module):
    """Slide tokens from (1, N, C) features and (1, N, 2) level-0 corners, as TITAN's vision tower takes them;
    ``no_proj`` leaves out the projection into the text space."""

    def __init__(self, config):
        super().__init__()
        self.patch = nn.Linear(config.patch_dim, config.embed_dim)
        self.position = nn.Linear(2, config.embed_dim)
        self.proj = nn.Parameter(torch.zeros(config.embed_dim, config.embed_dim))

    def forward(self, features, coords, patch_size_lv0, no_proj=False):
        if features.dim() != 3 or coords.dim() != 3 or len(features) != 1:
            raise ValueError(f"expected (1, N, C) features and (1, N, 2) coords, got {tuple(features.shape)} and "
                             f"{tuple(coords.shape)}")
        grid = coords.float() / float(patch_size_lv0)
        grid = grid - grid.mean(1, keepdim=True)
        x = self.patch(features.float()).mean(1) + torch.tanh(self.position(grid)).mean(1)
        return x if no_proj else x @ self.proj


class PatchEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, kernel_size=8, stride=8)
        self.head = nn.Linear(8, config.patch_dim)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(F.gelu(self.stem(x)), 1).flatten(1))


class Titan(PreTrainedModel):
    config_class = TitanConfig

    def __init__(self, config):
        super().__init__(config)
        self.conch = PatchEncoder(config)
        self.vision_encoder = VisionEncoder(config)
        self.text_encoder = TextEncoder(config)
        self.post_init()

    def _init_weights(self, module):
        pass

    def return_conch(self):
        from torchvision import transforms

        side = self.config.conch_input
        return self.conch, transforms.Compose([
            transforms.Resize(side), transforms.CenterCrop(side), transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def encode_slide_from_patch_features(self, features, coords, patch_size_lv0):
        return self.vision_encoder(features, coords, patch_size_lv0, no_proj=True)

    def encode_text(self, input_ids, normalize=False):
        x = self.text_encoder(input_ids[:, :-1])  # TITAN makes room for its CLS token
        return F.normalize(x, dim=-1) if normalize else x
'''

PRISM_CONFIG = '''\
from transformers import PretrainedConfig


class PrismConfig(PretrainedConfig):
    model_type = "prism"

    def __init__(self, tile_dim=64, embed_dim=20, text_dim=18, latent_dim=12, vocab_size=512, context_length=32,
                 **kwargs):
        super().__init__(**kwargs)
        self.tile_dim, self.embed_dim, self.text_dim, self.latent_dim = tile_dim, embed_dim, text_dim, latent_dim
        self.vocab_size, self.context_length = vocab_size, context_length
'''

PRISM_MODELING = '''\
"""pathboard's tiny stand-in for PRISM's hub code: same entry points, none of its architecture."""
import math

import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_prism import PrismConfig


class TextDecoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.context_dim = config.embed_dim
        self.embed = nn.Embedding(config.vocab_size, config.text_dim, padding_idx=0)

    def forward(self, token_ids, image_latents):
        mask = (token_ids > 0).float().unsqueeze(-1)
        return {"text_embedding": (self.embed(token_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)}


class Prism(PreTrainedModel):
    config_class = PrismConfig

    def __init__(self, config):
        super().__init__(config)
        self.attention = nn.Linear(config.tile_dim, 1)
        self.slide_encoder = nn.Linear(config.tile_dim, config.embed_dim)
        self.text_decoder = TextDecoder(config)
        self.text_to_latents = nn.Linear(config.text_dim, config.latent_dim)
        self.img_to_latents = nn.Linear(config.embed_dim, config.latent_dim)
        self.temperature = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.post_init()

    def _init_weights(self, module):
        pass

    def slide_representations(self, tile_embeddings):
        x = tile_embeddings.float()
        weights = torch.softmax(self.attention(x), dim=1)
        embedding = (weights * self.slide_encoder(x)).sum(1)
        return {"image_embedding": embedding, "image_latents": embedding.unsqueeze(1).repeat(1, 2, 1)}

    def tokenize(self, texts):
        length = self.config.context_length
        ids = torch.zeros(len(texts), length + 1, dtype=torch.long)
        for i, text in enumerate(texts):
            words = text.lower().split()[:length]
            for j, word in enumerate(words):
                ids[i, j] = 2 + sum((k + 1) * ord(c) for k, c in enumerate(word)) % (self.config.vocab_size - 2)
            ids[i, len(words)] = 1  # the end token, which the zero-shot path drops
        return ids
'''

#: Virchow's config.json (paige-ai/Virchow) with the width and depth cut to a stand-in's
VIRCHOW_CONFIG: dict = {
    "architecture": "vit_huge_patch14_224",
    "model_args": {"img_size": 224, "init_values": 1e-5, "num_classes": 0, "mlp_ratio": 5.3375, "global_pool": "",
                   "dynamic_img_size": True, "embed_dim": 32, "depth": 1, "num_heads": 2},
    "pretrained_cfg": {"tag": "virchow_v1", "custom_load": False, "input_size": [3, 224, 224],
                       "fixed_input_size": False, "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center",
                       "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "num_classes": 0,
                       "pool_size": None, "first_conv": "patch_embed.proj", "classifier": "head"},
}


def _remote_code_folder(out: Path, name: str, config_source: str, modeling_source: str, config_class: str,
                        model_class: str, seed: int) -> Path:
    """A hub-code folder: the two code files, config.json with its auto_map, and random-init safetensors
    weights, made through transformers' own remote-code path."""
    import torch
    from transformers import AutoConfig, AutoModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"configuration_{name}.py").write_text(config_source)
    (out / f"modeling_{name}.py").write_text(modeling_source)
    (out / "config.json").write_text(json.dumps({
        "model_type": name, "architectures": [model_class],
        "auto_map": {"AutoConfig": f"configuration_{name}.{config_class}",
                     "AutoModel": f"modeling_{name}.{model_class}"}}, indent=2))
    config = AutoConfig.from_pretrained(str(out), trust_remote_code=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config, trust_remote_code=True)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim():  # the temperature keeps its initial value
                p.normal_(0, 0.5)
    model.save_pretrained(str(out))
    return out


def write_titan(out: Path, seed: int = 0) -> Path:
    """A TITAN stand-in folder (see the module)."""
    return _remote_code_folder(out, "titan", TITAN_CONFIG, TITAN_MODELING, "TitanConfig", "Titan", seed)


def write_prism(out: Path, seed: int = 0) -> Path:
    """A PRISM stand-in folder (see the module); it reads 64-dimensional tile features, as :func:`write_virchow`'s
    stand-in makes them (class token and mean patch token: 2 x 32)."""
    return _remote_code_folder(out, "prism", PRISM_CONFIG, PRISM_MODELING, "PrismConfig", "Prism", seed)


def write_virchow(out: Path, seed: int = 0) -> Path:
    """A Virchow stand-in folder in timm's hub layout (see the module)."""
    import timm
    import torch
    from safetensors.torch import save_file
    from timm.layers import SwiGLUPacked

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = timm.create_model(VIRCHOW_CONFIG["architecture"], pretrained=False, mlp_layer=SwiGLUPacked,
                              act_layer=torch.nn.SiLU, **VIRCHOW_CONFIG["model_args"])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(VIRCHOW_CONFIG, indent=2))
    return out


def write_trident_features(out: Path, slide_name: str, features: np.ndarray, coords: np.ndarray,
                           patch_size_level0: int, *, encoder: str, magnification: float = 20.0,
                           patch_size: int = 512) -> Path:
    """``<out>/<mag>x_<size>px_0px_overlap/features_<encoder>/<slide_name>.h5`` as TRIDENT writes it (``features``,
    ``coords`` with ``patch_size_level0``, ``patch_size`` and ``target_magnification``); no ``encoder`` attribute,
    so the folder name alone says which encoder made it, as for TRIDENT's own files. Returns the features folder."""
    import h5py

    folder = Path(out) / f"{magnification:g}x_{patch_size}px_0px_overlap" / f"features_{encoder}"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / f"{slide_name}.h5", "w") as fh:
        fh.create_dataset("features", data=np.asarray(features, dtype=np.float32))
        ds = fh.create_dataset("coords", data=np.asarray(coords, dtype=np.int64))
        ds.attrs["patch_size_level0"] = int(patch_size_level0)
        ds.attrs["patch_size"] = int(patch_size)
        ds.attrs["target_magnification"] = float(magnification)
    return folder

"""PRISM (Shaikovski et al., 2024; Paige): a slide-level vision-language model over Virchow tile features.

Everything here follows PRISM's and Virchow's public model cards; PRISM's model code is its own hub code
(``paige-ai/Prism``, CC BY-NC-ND 4.0, gated), loaded at run time from the resolved folder with
``trust_remote_code`` and only after ``--trust-remote-code prism``. pathboard copies none of it.

- ``virchow``: the patch encoder (``paige-ai/Virchow``, gated, Apache 2.0), a timm ViT-H/14 with SwiGLU MLPs at
  224 px; a tile's embedding is its class token and mean patch token side by side (2,560-d), as PRISM reads it.
- ``prism``: tiles at 20x, ``slide_representations(tiles)["image_embedding"]`` is the slide representation (probes,
  slide retrieval); the text space is PRISM's contrastive latents: ``img_to_latents`` of it, and ``text_to_latents`` of
  the text decoder's ``text_embedding`` for ``tokenize(texts)`` without its end token (PRISM's zero-shot path, as
  third-party code that runs PRISM calls it); the logit scale is ``exp(temperature)``. Not checked against PRISM's
  hub code, which was not available offline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pathboard.api import (
    ModelCard,
    ModelSpec,
    PatchEncoderModel,
    Runtime,
    Tiling,
    TorchSlideEncoder,
    Weights,
    hookimpl,
    hub_folder,
)
from pathboard.plugins.models._remote import HubSlideSpec

REPO = "paige-ai/Prism"
VIRCHOW = "paige-ai/Virchow"
TILING = Tiling(size=224, mpp=None, magnification=20.0)


@dataclass
class VirchowSpec(ModelSpec):
    card: ModelCard = field(default_factory=lambda: ModelCard(
        title="Virchow (PRISM's patch encoder, ViT-H/14)", paper="Vorontsov et al., Nature Medicine 2024",
        license="Apache 2.0", url=f"https://huggingface.co/{VIRCHOW}", gated=True, params="632M", embed_dim=2560,
        input_size=224, notes="image features only (no text tower); gated: accept the licence on the hub"))
    capabilities: frozenset[str] = frozenset({"image"})
    requires: tuple[str, ...] = ("torch", "timm")
    trident_name = "virchow"

    def resolve(self, override: Weights | None = None) -> Weights:
        return hub_folder(self.id, VIRCHOW, override, gated=True)

    def load(self, weights: Weights, runtime: Runtime) -> PatchEncoderModel:
        import timm
        import torch
        from timm.data import create_transform, resolve_data_config
        from timm.layers import SwiGLUPacked

        model = timm.create_model(f"local-dir:{weights.path}", pretrained=True, mlp_layer=SwiGLUPacked,
                                  act_layer=torch.nn.SiLU)
        transform = create_transform(**resolve_data_config(model.pretrained_cfg, model=model))
        return VirchowFeatures(self.id, weights.fingerprint, model.eval().to(runtime.device), transform, None,
                               runtime)


class VirchowFeatures(PatchEncoderModel):
    def image_features(self, batch):
        import torch

        tokens = self.model(batch)  # [B, 1 + patches, D]: the class token first
        prefix = getattr(self.model, "num_prefix_tokens", 1)
        return torch.cat([tokens[:, 0], tokens[:, prefix:].mean(1)], dim=-1)


class PrismEncoder(TorchSlideEncoder):
    def slide_features(self, features, coords, patch_size_lv0):
        return self.model.slide_representations(features)["image_embedding"]  # [1, T, F] tiles; coordinates unused

    def project(self, embedding):
        return self.model.img_to_latents(embedding)  # PRISM's contrastive latents, where its texts are

    def text_features(self, texts):
        import torch

        ids = self.model.tokenize(texts)[:, :-1].to(self.runtime.device)  # PRISM's zero-shot path drops the end token
        dummy = torch.empty((len(ids), 1, self.model.text_decoder.context_dim), device=self.runtime.device)
        return self.model.text_to_latents(self.model.text_decoder(ids, dummy)["text_embedding"])

    @property
    def logit_scale(self) -> float:
        return float(self.model.temperature.detach().exp())


@dataclass
class PrismSpec(HubSlideSpec):
    card: ModelCard = field(default_factory=lambda: ModelCard(
        title="PRISM (slide encoder over Virchow)", paper="Shaikovski et al., 2024", license="CC BY-NC-ND 4.0",
        url=f"https://huggingface.co/{REPO}", gated=True, params="~558M",
        notes="gated; runs its own hub code: allow it with --trust-remote-code prism; non-commercial use only"))
    patch_encoder: str = "virchow"
    tiling: Tiling = TILING
    repo = REPO
    encoder = PrismEncoder


@hookimpl
def register_models(register):
    register(VirchowSpec(id="virchow"))
    register(PrismSpec(id="prism"))

"""TITAN (Ding et al., 2024; MahmoodLab): a slide-level vision-language model over CONCH v1.5 patch features.

Everything here follows TITAN's public README and model card; the model code is TITAN's own hub code
(``MahmoodLab/TITAN``, CC BY-NC-ND 4.0, gated), loaded at run time from the resolved folder with
``trust_remote_code`` and only after ``--trust-remote-code titan``. pathboard copies none of it.

- ``conch-v1.5``: the patch encoder, ``titan.return_conch()`` (model and eval transform), read from the same
  repository; its raw 768-d features are what TITAN reads (not L2-normalised). TRIDENT calls them ``conch_v15``.
- ``titan``: 512 px tiles at 20x, ``encode_slide_from_patch_features(features, coords, patch_size_lv0)`` on
  (1, N, C) and (1, N, 2) tensors gives the slide representation (probes, slide retrieval); ``@ vision_encoder.proj``
  maps it into the text space (zero-shot, report retrieval), as TITAN's own ``zero_shot()`` does; texts through
  ``text_encoder.tokenizer`` and ``encode_text(ids, normalize=True)``. TITAN's ``zero_shot()`` applies no
  temperature, so its calibration metrics use a logit scale of 1.

The hub code's entry points were checked against TITAN's published ``modeling_titan.py``; the weights are gated and
were not available to check numbers.

The revision pinned is the snapshot the run loads: its every file, code included, is in the weights fingerprint
that keys the cache and every stored number.
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
from pathboard.plugins.models._remote import HubSlideSpec, remote_model

REPO = "MahmoodLab/TITAN"
#: TITAN's patch grid: 512 px tiles at 20x (1024 level-0 pixels on a 40x scan)
TILING = Tiling(size=512, mpp=None, magnification=20.0)
NOTES = ("gated (accept the licence on the hub); runs its own hub code: allow it with --trust-remote-code titan; "
         "CC BY-NC-ND 4.0, non-commercial use only")


@dataclass
class ConchV15Spec(ModelSpec):
    """CONCH v1.5, TITAN's patch encoder, as ``return_conch()`` gives it."""

    card: ModelCard = field(default_factory=lambda: ModelCard(
        title="CONCH v1.5 (TITAN's patch encoder, ViT-L/16)", paper="Ding et al., 2024 (TITAN)",
        license="CC BY-NC-ND 4.0", url=f"https://huggingface.co/{REPO}", gated=True, embed_dim=768,
        input_size=448, notes="image features only (no text tower); " + NOTES))
    capabilities: frozenset[str] = frozenset({"image"})
    requires: tuple[str, ...] = ("torch", "transformers")
    trident_name = "conch_v15"
    remote_code = True
    repo = REPO

    def resolve(self, override: Weights | None = None) -> Weights:
        return hub_folder(self.id, REPO, override, gated=True)

    def load(self, weights: Weights, runtime: Runtime) -> PatchEncoderModel:
        titan = remote_model(weights, runtime, "CONCH v1.5")
        conch, transform = titan.return_conch()
        return ConchV15(self.id, weights.fingerprint, conch.eval().to(runtime.device), transform, None, runtime)


class ConchV15(PatchEncoderModel):
    def image_features(self, batch):
        return self.model(batch)


class TitanEncoder(TorchSlideEncoder):
    def slide_features(self, features, coords, patch_size_lv0):
        return self.model.encode_slide_from_patch_features(features, coords, patch_size_lv0)  # before the projection

    def project(self, embedding):
        return embedding @ self.model.vision_encoder.proj  # into the text space, as TITAN's zero_shot() does

    def text_features(self, texts):
        return self.model.encode_text(self.model.text_encoder.tokenizer(texts).to(self.runtime.device), normalize=True)

    @property
    def logit_scale(self) -> float:
        """TITAN's ``zero_shot()`` takes the softmax of the raw cosines: no learned temperature is applied."""
        scale = getattr(self.model, "logit_scale", None)
        return 1.0 if scale is None else float(scale.detach().exp())


@dataclass
class TitanSpec(HubSlideSpec):
    card: ModelCard = field(default_factory=lambda: ModelCard(
        title="TITAN (slide encoder over CONCH v1.5)", paper="Ding et al., 2024", license="CC BY-NC-ND 4.0",
        url=f"https://huggingface.co/{REPO}", gated=True, embed_dim=768, params="~159M", notes=NOTES))
    patch_encoder: str = "conch-v1.5"
    tiling: Tiling = TILING
    repo = REPO
    encoder = TitanEncoder


@hookimpl
def register_models(register):
    register(ConchV15Spec(id="conch-v1.5"))
    register(TitanSpec(id="titan"))

"""KEP-CTP (Zhou et al., ECCV 2024): CTransPath and PubMedBERT aligned under a pathology knowledge encoder.

pathboard's own module, state-dict compatible with the released ``pytorch_model.bin`` (MAGIC-AI4Med/KEP,
``inference/KEP_model.py``, MIT): ``visual`` is CTransPath -- timm_ctp's (timm 0.5.4)
``swin_tiny_patch4_window7_224`` with a convolutional stem, head removed, 768-d average-pooled output --
``visual_head`` an MLP 768->512, ``text.bert_model`` PubMedBERT and ``text.mlp_embed`` an MLP 768->512 on
its pooler output, ``logit_scale`` a learned scalar. Current timm builds the Swin; the checkpoint is
mapped from timm 0.5.4's layout (patch merging at the end of a stage, stored index/mask buffers).

The weights are not on the Hugging Face hub. Point pathboard at the released KEP-CTP_OpenPath folder:
``pytorch_model.bin`` beside PubMedBERT's ``config.json`` and tokenizer (``vocab.txt``, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pathboard.api import (
    BertCLIPModel,
    EmbeddingModel,
    ModelCard,
    ModelSpec,
    PathboardError,
    Runtime,
    Weights,
    WeightsNotFoundError,
    config_path,
    hookimpl,
    imagenet_transform,
    load_strict,
    require_weight_files,
    wordpiece_tokenizer,
)

CHECKPOINT = "pytorch_model.bin"
FILES = [(CHECKPOINT,), ("config.json",), ("vocab.txt",)]
RELEASE = "https://drive.google.com/drive/folders/1CUCE_m9yQuwdmAYxFnSi9W8LkCSGHCQ3"


def from_timm054(sd: dict) -> dict:
    """timm 0.5.4 Swin keys -> current timm: patch merging moves from the end of stage i to the start of
    stage i+1, and the relative-position index and shift masks are rebuilt rather than stored."""
    if "visual.layers.0.downsample.reduction.weight" not in sd:
        return sd
    out = {}
    for k, v in sd.items():
        if k.startswith("visual.") and k.endswith(("relative_position_index", "attn_mask")):
            continue
        out[re.sub(r"^visual\.layers\.(\d+)\.downsample", lambda m: f"visual.layers.{int(m[1]) + 1}.downsample", k)] = v
    return out


@dataclass
class KEPSpec(ModelSpec):
    requires: tuple[str, ...] = ("torch", "timm", "transformers")

    def resolve(self, override: Weights | None = None) -> Weights:
        hint = f"it must hold {CHECKPOINT}, config.json and vocab.txt from the KEP release ({RELEASE})"
        if override is None:
            raise WeightsNotFoundError(
                f"weights for {self.id} are not on the Hugging Face hub: download the KEP-CTP_OpenPath folder "
                f"({CHECKPOINT}, config.json, vocab.txt) from {RELEASE} (linked from "
                f"https://github.com/MAGIC-AI4Med/KEP), then pass --weights {self.id}=DIR or set "
                f"{self.id} = \"DIR\" under [weights] in {config_path()}")
        require_weight_files(self.id, override.path, FILES, hint)
        return override

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        import torch
        from transformers import BertConfig

        from pathboard.plugins.models._kep_modules import KEPCTP

        path = weights.path / CHECKPOINT
        sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = from_timm054(sd.get("state_dict", sd))
        try:
            model = KEPCTP.for_checkpoint(sd, BertConfig.from_pretrained(str(weights.path), local_files_only=True))
        except KeyError as exc:
            raise PathboardError(f"{self.id}: {path} is not a KEP-CTP checkpoint (no {exc})") from None
        load_strict(model, sd, self.id, path)
        tokenizer = wordpiece_tokenizer(weights.path, self.id)
        return BertCLIPModel(self.id, weights.fingerprint, model.to(runtime.device).eval(), imagenet_transform(224),
                        tokenizer, runtime)



CARD = ModelCard(
    title="KEP-CTP", paper="Zhou et al., Knowledge-enhanced Visual-Language Pretraining for Computational "
    "Pathology, ECCV 2024", license="MIT", url="https://github.com/MAGIC-AI4Med/KEP", params="138M",
    embed_dim=512, input_size=224,
    notes="CTransPath + PubMedBERT, trained on OpenPath. Weights are outside the HF hub (Google Drive): "
    f"--weights kep-ctp=DIR with {CHECKPOINT}, config.json, vocab.txt. ImageNet mean/std, bicubic resize + "
    "centre crop 224, text context 256.")


@hookimpl
def register_models(register):
    register(KEPSpec(id="kep-ctp", card=CARD))

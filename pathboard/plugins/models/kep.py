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

import torch
from torch import nn

from pathboard import hookimpl
from pathboard.core.errors import PathboardError, WeightsNotFoundError
from pathboard.core.model import EmbeddingModel, ModelCard, ModelSpec, Runtime, TorchCLIPModel
from pathboard.core.weights import Weights, config_path
from pathboard.plugins.models import _bert_text as bt

CHECKPOINT = "pytorch_model.bin"
FILES = [(CHECKPOINT,), ("config.json",), ("vocab.txt",)]
RELEASE = "https://drive.google.com/drive/folders/1CUCE_m9yQuwdmAYxFnSi9W8LkCSGHCQ3"


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
        self.bert_model = bt.bert(bert_config)
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
    def for_checkpoint(cls, sd: dict, bert_config) -> "KEPCTP":
        """The architecture the checkpoint's tensor shapes describe (CTransPath's for the release)."""
        blocks = [tuple(map(int, m.groups())) for k in sd if (m := re.match(r"visual\.layers\.(\d+)\.blocks\.(\d+)\.", k))]
        if not blocks:
            raise KeyError("visual.layers.*.blocks.*")
        stages = range(max(s for s, _ in blocks) + 1)
        table = "visual.layers.{}.blocks.0.attn.relative_position_bias_table"
        return cls(bert_config, embed_dim=sd["visual_head.2.weight"].shape[0],
                   stem_dim=sd["visual.patch_embed.proj.6.weight"].shape[0],
                   depths=tuple(max(b for s, b in blocks if s == i) + 1 for i in stages),
                   heads=tuple(sd[table.format(i)].shape[1] for i in stages),
                   window=(round(sd[table.format(0)].shape[0] ** 0.5) + 1) // 2)

    def encode_image(self, x):
        return self.visual_head(self.visual(x))


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
        bt.require_files(self.id, override.path, FILES, hint)
        return override

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        from transformers import BertConfig

        path = weights.path / CHECKPOINT
        sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = from_timm054(sd.get("state_dict", sd))
        try:
            model = KEPCTP.for_checkpoint(sd, BertConfig.from_pretrained(str(weights.path), local_files_only=True))
        except KeyError as exc:
            raise PathboardError(f"{self.id}: {path} is not a KEP-CTP checkpoint (no {exc})") from None
        bt.load_strict(model, sd, self.id, path)
        tokenizer = bt.wordpiece_tokenizer(weights.path, self.id)
        return KEPModel(self.id, weights.fingerprint, model.to(runtime.device).eval(), bt.imagenet_transform(224),
                        tokenizer, runtime)


class KEPModel(TorchCLIPModel):
    def image_features(self, batch):
        return self.model.encode_image(batch)

    def text_features(self, texts):
        limit = min(bt.CONTEXT, self.model.text.bert_model.config.max_position_embeddings)
        return self.model.text(bt.tokenize(self.tokenizer, texts, limit, self.runtime.device))


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

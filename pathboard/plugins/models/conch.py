"""CONCH (Lu et al., Nature Medicine 2024): a CoCa ViT-B/16 at 448 px trained on 1.17M pathology
image-caption pairs.

The model code is ``conch-fork`` (CC BY-NC-ND 4.0, the optional extra ``pathboard[conch]``): pathboard
depends on it and never copies it. The gated weights are ``pytorch_model.bin`` of
``MahmoodLab/conch``; the byte-level BPE tokenizer ships inside the package.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pathboard.api import (
    EmbeddingModel,
    ModelCard,
    ModelSpec,
    PathboardError,
    Runtime,
    TorchCLIPModel,
    Weights,
    WeightsNotFoundError,
    from_hub,
    hookimpl,
    offline,
)

if TYPE_CHECKING:
    import torch

REPO = "MahmoodLab/conch"
CHECKPOINT = "pytorch_model.bin"
ARCH = "conch_ViT-B-16"
CONTEXT = 128  # the model's; the tokenizer gives 127 and a pad is appended (its last slot is the CLS)
INSTALL = 'CONCH needs its model code: pip install "pathboard[conch]" (conch-fork, CC BY-NC-ND 4.0)'


def _conch():
    try:
        with warnings.catch_warnings():  # conch imports timm.models.layers, deprecated in timm 1.x
            warnings.simplefilter("ignore", FutureWarning)
            import conch.open_clip_custom as occ
    except ImportError as exc:
        raise PathboardError(f"{INSTALL} ({exc})") from None
    return occ


@dataclass
class ConchSpec(ModelSpec):
    card: ModelCard = field(default_factory=lambda: ModelCard(
        title="CONCH (CoCa ViT-B/16, 448 px)", paper="Lu et al., Nature Medicine 2024",
        license="CC BY-NC-ND 4.0", url=f"https://huggingface.co/{REPO}", gated=True,
        params="395M", embed_dim=512, input_size=448, context_length=128,
        notes='gated: accept the licence on the hub; model code from pip install "pathboard[conch]"'))

    def resolve(self, override: Weights | None = None) -> Weights:
        if override is not None:
            path = override.path / CHECKPOINT if override.path.is_dir() else override.path
            if not path.is_file():
                raise WeightsNotFoundError(f"weights for {self.id}: no {CHECKPOINT} in {override.path}")
            return Weights(path, override.origin)
        try:
            snapshot = from_hub(self.id, REPO, [], [CHECKPOINT], optional=["meta.yaml"])
        except WeightsNotFoundError:
            raise WeightsNotFoundError(
                f"weights for {self.id} not found; {REPO} is gated: accept its licence at "
                f"https://huggingface.co/{REPO}, run `hf auth login`, then `hf download {REPO}`; "
                f"or put {CHECKPOINT} at a path and pass --weights {self.id}=PATH"
                + (" (HF_HUB_OFFLINE is set, so nothing was downloaded)" if offline() else "")) from None
        return Weights(snapshot.path / CHECKPOINT, snapshot.origin)

    def load(self, weights: Weights, runtime: Runtime) -> EmbeddingModel:
        occ = _conch()
        path = weights.path / CHECKPOINT if weights.path.is_dir() else weights.path
        state = _state_dict(path)
        arch = architecture(occ, state)
        missing = [k for k in _model_keys(occ, arch) if k not in state]
        del state
        if missing:  # conch loads with strict=False: catch a wrong file here, not as random weights
            raise PathboardError(f"{path} is not a CONCH checkpoint: {len(missing)} tensors missing "
                                 f"(e.g. {missing[0]})")
        model, preprocess = occ.create_model_from_pretrained(arch, str(path), device=runtime.device)
        return ConchModel(self.id, weights.fingerprint, model.eval(), preprocess, tokenizer(occ), runtime)


class ConchModel(TorchCLIPModel):
    def image_features(self, batch):
        return self.model.encode_image(batch, proj_contrast=True, normalize=True)

    def text_features(self, texts):
        return self.model.encode_text(tokenize(self.tokenizer, texts).to(self.runtime.device))


def tokenizer(occ=None):
    """conch's tokenizer (``get_tokenizer()``: the byte-level BPE file inside the package, no hub).

    Late transformers 4.x (seen in 4.48-4.57) silently turn off the file's ``add_prefix_space``, which
    changes the first word's id ("an" instead of "Ġan"); the file's pre-tokenizer is put back so every
    version gives the ids of the transformers CONCH was released with (4.30-4.44 and 5.x need no fix)."""
    from tokenizers import Tokenizer

    occ = occ or _conch()
    tok = occ.get_tokenizer()
    files = occ.custom_tokenizer
    spec = Tokenizer.from_file(str(files.TOKENIZER_DIR / files.DEFAULT_TOKENIZER))
    if tok.backend_tokenizer.pre_tokenizer.__getstate__() != spec.pre_tokenizer.__getstate__():
        tok.backend_tokenizer.pre_tokenizer = spec.pre_tokenizer
    return tok


def tokenize(tok, texts: list[str]) -> torch.Tensor:
    """What conch's ``tokenize()`` does, without ``batch_encode_plus`` (gone in transformers 5):
    127 tokens (start, text, end, pads; truncated) and one pad appended, the slot of the CLS token."""
    import torch

    ids = tok(list(texts), max_length=CONTEXT - 1, add_special_tokens=True, return_token_type_ids=False,
              truncation=True, padding="max_length", return_tensors="pt")["input_ids"]
    return torch.nn.functional.pad(ids, (0, 1), value=tok.pad_token_id)


def _state_dict(path: Path) -> dict:
    """The checkpoint's tensors, memory-mapped (only shapes and names are read here)."""
    import torch

    try:
        sd = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except RuntimeError:  # an old, non-zip checkpoint cannot be memory-mapped
        sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        raise PathboardError(f"{path} is not a CONCH checkpoint (no state dict)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def architecture(occ, state: dict) -> str | dict:
    """``conch_ViT-B-16`` when the checkpoint has its shapes (the published weights), else the same
    config with the widths, depths and sizes the checkpoint has (heads and image size as published)."""
    published = json.loads((occ.factory.CFG_DIR / f"{ARCH}.json").read_text())
    cfg = json.loads(json.dumps(published))
    v, t, m = cfg["vision_cfg"], cfg["text_cfg"], cfg["multimodal_cfg"]
    v.setdefault("width", 768), v.setdefault("layers", 12)  # CoCaVisionCfg's defaults
    reference = json.loads(json.dumps(cfg))

    def depth(prefix):
        return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})

    try:
        cfg["embed_dim"] = state["text.text_projection"].shape[1]
        v["width"] = state["visual.trunk.cls_token"].shape[-1]
        v["layers"] = depth("visual.trunk.blocks.")
        v["patch_size"] = state["visual.trunk.patch_embed.proj.weight"].shape[-1]
        if "visual.ln_caption.weight" in state:
            cfg["embed_dim_caption"] = state["visual.ln_caption.weight"].shape[0]
            v["n_queries_caption"] = state["visual.attn_pool_caption.query"].shape[0]
        t["vocab_size"], t["width"] = state["text.token_embedding.weight"].shape
        t["context_length"] = state["text.positional_embedding"].shape[0]
        t["layers"] = depth("text.transformer.resblocks.")
    except KeyError as exc:
        raise PathboardError(f"not a CONCH checkpoint: no tensor {exc}") from None
    m["vocab_size"], m["context_length"] = t["vocab_size"], t["context_length"]
    if "text_decoder.ln_final.weight" in state:  # the published checkpoint ships no caption decoder
        m["width"], m["layers"] = state["text_decoder.ln_final.weight"].shape[0], depth("text_decoder.resblocks.")
    else:
        m["width"] = t["width"]
    return ARCH if cfg == reference else cfg


def _model_keys(occ, arch: str | dict) -> list[str]:
    """The parameters zero-shot needs (image and text towers), built on the meta device (free)."""
    import torch

    cfg = json.loads((occ.factory.CFG_DIR / f"{arch}.json").read_text()) if isinstance(arch, str) else dict(arch)
    cfg.pop("custom_text", None)
    with torch.device("meta"):
        model = occ.CoCa(**cfg)
    return [k for k, _ in model.named_parameters() if k.startswith(("visual.", "text.", "logit_scale"))]


@hookimpl
def register_models(register):
    register(ConchSpec(id="conch"))

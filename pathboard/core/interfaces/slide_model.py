"""Slide-level vision-language models (TITAN, PRISM): a slide encoder over a patch encoder's tile features.

A slide model reads no pixels. Its spec names the **patch encoder** whose tile features it reads (the id of a
registered model, e.g. ``conch-v1.5`` for TITAN, ``virchow`` for PRISM) and the **tiling** those features are
made at (TITAN: 512 px at 20x; PRISM: 224 px at 20x). pathboard embeds the tiles with that patch encoder,
cached per (patch encoder, tiling, slide), so every model that reads them shares them: a second slide model over
the same patch encoder embeds no tile, and neither do the patch encoder's own slide tasks at that tiling. The
loaded :class:`SlideEncoder` then turns each slide's [T, D] features and level-0 coordinates into one embedding
(:meth:`SlideEncoder.encode_slide`: the model's slide representation, what probes and slide retrieval read), and
:meth:`SlideEncoder.to_text` maps it into the space of its text encoder (TITAN: its vision projection; PRISM: its
image-to-latents head), where zero-shot classification and report retrieval compare. Both are cached.

Slide models take part in the slide tasks (:attr:`pathboard.core.interfaces.task.Task.slide_level`): zero-shot
WSI classification (slide embedding against the prompt classifier: pooling ``slide-encoder``), report and slide
retrieval, few-shot WSI (probes on slide embeddings) and prompt sensitivity. A spec whose code comes from its
weights repository (``transformers``' ``trust_remote_code``) says ``remote_code = True``: it runs only after
``--trust-remote-code ID`` (or ``trust_remote_code = ["ID"]`` in the config file).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pathboard.core.interfaces.model import ModelSpec
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.metrics import normalised

if TYPE_CHECKING:
    import torch

#: what a slide model can do: encode slides (from tile features) and texts
SLIDE_CAPABILITIES = frozenset({"slide", "text"})


class SlideEncoder(ABC):
    """A loaded slide model. :meth:`encode_slide` returns a slide's representation (float32, any scale);
    :meth:`to_text` maps one into the space of :meth:`encode_texts` (both L2-normalised float32 on the CPU)."""

    id: str
    fingerprint: str
    capabilities: frozenset[str] = SLIDE_CAPABILITIES

    @abstractmethod
    def encode_slide(self, features: np.ndarray, coords: np.ndarray, patch_size_lv0: int) -> np.ndarray:
        """[D]: one slide's representation from its tiles' [T, F] patch-encoder features and [T, 2] level-0 (x, y)
        corners; ``patch_size_lv0`` is a tile's side in level-0 pixels (512 px at 20x is 1024 on a 40x scan)."""

    def to_text(self, embedding: np.ndarray) -> np.ndarray:
        """[D'] unit vector: ``embedding`` (from :meth:`encode_slide`) in the space of :meth:`encode_texts`; the
        default is a model whose slide representation already is in that space."""
        return normalised(np.reshape(embedding, (1, -1)))[0]

    @abstractmethod
    def encode_texts(self, texts: list[str]) -> torch.Tensor: ...

    @property
    def logit_scale(self) -> float:
        """The learned temperature's exp, when the model has one."""
        raise AttributeError(f"{self.id} reports no logit scale")

    def parameter_count(self) -> int | None:
        module = getattr(self, "model", None)
        parameters = getattr(module, "parameters", None)
        return int(sum(p.numel() for p in parameters())) if callable(parameters) else None


class TorchSlideEncoder(SlideEncoder):
    """Device, precision, batching and normalisation for a torch slide ``model``. Subclasses only say how to get
    raw outputs: ``slide_features(features, coords, patch_size_lv0)`` from tensors already on the device (with a
    batch dimension: [1, T, F] and [1, T, 2], as the models' own APIs take them), ``project(embedding)`` into the
    text space (identity unless overridden), and ``text_features(texts)`` for at most ``text_batch`` strings."""

    text_batch = 256

    def __init__(self, id: str, fingerprint: str, model, runtime):
        self.id, self.fingerprint, self.model, self.runtime = id, fingerprint, model, runtime

    @abstractmethod
    def slide_features(self, features: torch.Tensor, coords: torch.Tensor, patch_size_lv0: int) -> torch.Tensor: ...

    @abstractmethod
    def text_features(self, texts: list[str]) -> torch.Tensor: ...

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """[1, D] slide representation -> [1, D'] in the text space (identity: already there)."""
        return embedding

    def encode_slide(self, features, coords, patch_size_lv0):
        import torch

        device = self.runtime.device
        with torch.inference_mode(), self.runtime.autocast():  # copies: cached tiles are read-only memory maps
            out = self.slide_features(torch.tensor(np.asarray(features), device=device)[None],
                                      torch.tensor(np.asarray(coords), device=device)[None], int(patch_size_lv0))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().float().cpu().numpy().reshape(-1).astype(np.float32)

    def to_text(self, embedding):
        import torch

        with torch.inference_mode():
            x = torch.tensor(np.asarray(embedding, dtype=np.float32), device=self.runtime.device).reshape(1, -1)
            out = self.project(x).float().cpu().numpy()
        return normalised(out.reshape(1, -1))[0]

    def encode_texts(self, texts):
        import torch

        from pathboard.core.interfaces.model import l2_normalise

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.text_batch):
                with self.runtime.autocast():
                    out.append(l2_normalise(self.text_features(list(texts[i:i + self.text_batch]))).cpu())
        return torch.cat(out)


@dataclass
class SlideModelSpec(ModelSpec):
    """A registered slide model: :meth:`load` returns a :class:`SlideEncoder`."""

    capabilities: frozenset[str] = SLIDE_CAPABILITIES
    #: the registered model whose tile features the slide encoder reads
    patch_encoder: str = ""
    #: the tiling those features are made at (the slide tasks' own tiling options do not apply)
    tiling: Tiling = field(default_factory=lambda: Tiling(size=512, mpp=None, magnification=20.0))
    #: loads code from its weights repository: runs only after ``--trust-remote-code <id>``
    remote_code: bool = False


def is_slide_model(spec) -> bool:
    return isinstance(spec, SlideModelSpec) or "slide" in set(getattr(spec, "capabilities", ()))


def describe_tiling(tiling: Tiling) -> str:
    """``20x, 512 px`` or ``0.5 µm/px, 224 px``: how a slide model's tiling reads in lines and tables."""
    where = f"{tiling.magnification:g}x" if tiling.magnification else f"{tiling.target_mpp:g} µm/px"
    return f"{where}, {tiling.size} px"

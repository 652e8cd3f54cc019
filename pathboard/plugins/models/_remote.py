"""What the slide models' plugins share: loading a hub repository's own code (``trust_remote_code``) from the
resolved local folder."""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import ClassVar

from pathboard.api import PathboardError, Runtime, SlideModelSpec, TorchSlideEncoder, Weights, hub_folder


def remote_model(weights: Weights, runtime: Runtime, what: str):
    """``AutoModel.from_pretrained(folder, trust_remote_code=True)`` on the resolved folder (never the network: the
    code that runs is the code the weights fingerprint hashed), in eval mode on the runtime's device."""
    try:
        from transformers import AutoModel
    except ImportError as exc:
        raise PathboardError(f"{what} needs transformers: pip install transformers ({exc})") from None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = AutoModel.from_pretrained(str(weights.path), trust_remote_code=True)
    return model.eval().to(runtime.device)


@dataclass
class HubSlideSpec(SlideModelSpec):
    """A gated slide model whose code is its hub repository's (``repo``): resolved as a whole folder, loaded with
    ``trust_remote_code`` from it (only after the opt-in), wrapped in ``encoder``."""

    requires: tuple[str, ...] = ("torch", "transformers")
    remote_code: bool = True
    repo: ClassVar[str] = ""
    encoder: ClassVar[type[TorchSlideEncoder]]

    def resolve(self, override: Weights | None = None) -> Weights:
        return hub_folder(self.id, self.repo, override, gated=True)

    def load(self, weights: Weights, runtime: Runtime) -> TorchSlideEncoder:
        return self.encoder(self.id, weights.fingerprint, remote_model(weights, runtime, self.card.title), runtime)
